"""The project's URLs: path() routes, a regex route and an include()."""

from __future__ import annotations

from django.urls import include, path, re_path

from django_app import views

shop = [
    path("items/<int:item_id>/", views.item, name="item"),
    re_path(r"^legacy/(?P<slug>[a-z]+)/(\d+)/$", views.item_legacy, name="legacy"),
]

urlpatterns = [
    path("ok/", views.ok, name="ok"),
    path("boom/<int:item_id>/", views.boom, name="boom"),
    path("missing/", views.missing),
    path("host/", views.host),
    path("forbidden/", views.forbidden),
    path("tagged/<str:who>/", views.tagged),
    path("query/", views.query),
    path("page/", views.page),
    path("cached/", views.cached),
    path("post/", views.post),
    path("me/", views.me),
    path("async-ok/", views.async_ok),
    path("async-boom/", views.async_boom),
    path("bad-template/", views.bad_template),
    path("shop/", include(shop)),
]
