"""URL configuration of the whole site."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _

from reflib import views
from reflib.auth_forms import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm

admin.site.site_header = _("reflib administration")
admin.site.site_title = "reflib"
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", views.home, name="home"),
    path("docs/", views.docs_index, name="docs"),
    re_path(r"^docs/(?P<name>[a-z-]+)/$", views.docs_page, name="docs_page"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("chat.urls")),
    path("staffing/", include("staffing.urls")),
    path("", include("analytics.urls")),
    path("admin/", admin.site.urls),
]
