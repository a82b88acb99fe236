"""Only the admin: the staffing admin's tests do not depend on the rest of the site's pages."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
