from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from loyalty_site.navigation import sections_for


@login_required
def home(request):
    return render(request, "home.html", {"sections": sections_for(request.user)})
