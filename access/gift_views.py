"""Portal pages of gifts: the list of sent and received ones, cancelling, and the claim page."""

from django.http import HttpResponse


def gifts(request):
    return HttpResponse("gifts")


def cancel(request, gift_id):
    return HttpResponse("cancel")


def claim(request, code):
    return HttpResponse("claim")
