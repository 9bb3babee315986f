import os

from django.core.wsgi import get_wsgi_application

from config.body_deadline import with_body_deadline

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")  # DEBUG off
# Bodies that trickle in are cut off, so slow clients cannot hold every thread (the module).
application = with_body_deadline(get_wsgi_application())
