from django.urls import path

from monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("monitoring/", views.monitoring_index, name="index"),
    path("workflows/<slug:slug>/monitoring/", views.monitoring_page, name="page"),
]
