from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("", views.home, name="home"),
    path("review/<slug:slug>/", views.review_screen, name="screen"),
    path("review/<slug:slug>/reviewers/", views.reviewer_stats, name="stats-page"),
]
