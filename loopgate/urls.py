from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from loopgate.health import healthz, readyz
from loopgate.metrics import metrics_view

# Swagger UI comes from its CDN and styles itself inline; that page alone may do so. Its
# start-up script is served from this origin (the "split" view), not inlined.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
api_docs_view = csp_update(
    {
        "script-src": [SWAGGER_CDN],
        "style-src": [SWAGGER_CDN, "'unsafe-inline'"],
        "img-src": [SWAGGER_CDN],
    }
)(SpectacularSwaggerSplitView.as_view(url_name="schema"))

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("workspace.urls")),
    path("api/v1/", include("workspace.case_urls")),
    path("api/v1/", include("processing.urls")),
    path("api/v1/", include("workflows.urls")),
    path("api/v1/", include("review.urls")),
    path("api/v1/", include("automation.urls")),
    path("api/v1/", include("integrations.urls")),
    path("api/v1/", include("monitoring.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs_view, name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("automation.web_urls")),
    path("api/v1/", include("modelops.urls")),
    path("", include("modelops.web_urls")),
    path("", include("review.web_urls")),
    # Before workspace's pages: "cases/upload/" is not a case id.
    path("", include("processing.web_urls")),
    path("", include("workspace.web_urls")),
    path("", include("monitoring.web_urls")),
]
