from django.urls import path

from automation import views

app_name = "automation"
urlpatterns = [
    path("automation/", views.automation_index, name="index"),
    path("workflows/<slug:slug>/automation/", views.automation_page, name="page"),
]
