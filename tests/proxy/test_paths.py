"""The scope check's view of a path: what ``normalise`` makes of it and what ``certificates_only`` may reach.

The bypasses are those of the OWASP path-traversal cheat sheet, aimed at a Java servlet upstream.
"""

import pytest

from proxy.paths import normalise, quote, scope_allows

# Raw paths (as they arrive after /api/v1/proxy) that reach something other than a certificate path.
BYPASSES = [
    "/certificates/filter/..;/..;/users/currentUser",
    "/certificates/filter/%2e%2e;/%2e%2e;/users/currentUser",
    "/certificates/filter/%2E%2E%3B/%2E%2E%3B/users/currentUser",
    "/certificates/filter/..%3b/..%3b/users/currentUser",
    "/certificates/filter/..;jsessionid=1/..;x=2/users/currentUser",
    "/certificates/filter;/../../users/currentUser",
    "/certificates/filter%3b/../../users/currentUser",
    "/certificates;/../users/currentUser",
    "/certificates/filter/%c0%ae%c0%ae/%c0%ae%c0%ae/users/currentUser",
    "/certificates/filter/%c0%2e%c0%2e/users/currentUser",
    "/certificates/filter/%e0%80%ae%e0%80%ae/users/currentUser",
    "/certificates/filter/%25c0%25ae%25c0%25ae/users/currentUser",
    "/certificates/filter/%2e%2e/%2e%2e/users/currentUser",
    "/certificates/filter/%252e%252e/%252e%252e/users/currentUser",
    "/certificates/filter/..%5c..%5cusers/currentUser",
    "/certificates/filter/..\\..\\users/currentUser",
    "/certificates//filter//..//..//users/currentUser",
    "//users/currentUser",
    "/./users/currentUser",
    "/Certificates/Filter",
    "/CERTIFICATES/filter/../../users/currentUser",
    "/certificates/FILTER",
    "/certificates/filterAnything/x",
    "/certificates/filterAnything",
    "/certificates/filter..;/users/currentUser",
    "/certificates/removeAll",
    "/certificates/details",
    "/configurations/certificatesColumnOrderX",
    "/certificates/checkSystemIntegrityLogs",
    "/../certificates/filter",
    "/users/currentUser;certificates/filter",
    "/users;/certificates/filter/../../currentUser",
]

ALLOWED = [
    ("/certificates/filter", "certificates/filter"),
    ("/certificates/filter/", "certificates/filter/"),
    ("/certificates/filter/active", "certificates/filter/active"),
    ("/certificates/details/2", "certificates/details/2"),
    ("/certificates/details/", "certificates/details/"),
    ("/certificates/x/../filter", "certificates/filter"),
    ("/certificates//filter", "certificates/filter"),
    ("/certificates/filter;jsessionid=ABC123", "certificates/filter"),
    ("/certificates;v=1/details;v=2/7", "certificates/details/7"),
    ("/certificates/export/%E4%BD%A0.pem", "certificates/export/你.pem"),
    ("/certificates/activeForTesting/activate/", "certificates/activeForTesting/activate/"),
    ("/certificates/checkSystemIntegrityLog", "certificates/checkSystemIntegrityLog"),
    ("/certificates/checkSystemIntegrityLogExistance", "certificates/checkSystemIntegrityLogExistance"),
    ("/certificates/update/cancel", "certificates/update/cancel"),
    ("/configurations/certificatesColumnVisibility", "configurations/certificatesColumnVisibility"),
]


@pytest.mark.parametrize("raw", BYPASSES)
def test_bypasses_are_refused_to_certificates_only(raw):
    path = normalise(raw)

    assert path is None or not scope_allows("certificates_only", path), path


@pytest.mark.parametrize(("raw", "expected"), ALLOWED)
def test_certificate_paths_stay_allowed(raw, expected):
    assert normalise(raw) == expected
    assert scope_allows("certificates_only", expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/certificates/filter/..;/..;/users/currentUser", "users/currentUser"),
        ("/a/%2e%2e%3b/b", "b"),
        ("/a;x/b;y/", "a/b/"),
        ("/a/;/b", "a/b"),
        ("/a//b", "a/b"),
        ("/a/b/..", "a"),
    ],
)
def test_path_parameters_are_dropped_before_dots_are_resolved(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw", ["/%c0%ae%c0%ae/x", "/a/%ff", "/a/%25c0%25ae", "/.."])
def test_invalid_utf8_or_climbing_above_the_root_is_none(raw):
    assert normalise(raw) is None


def test_what_goes_on_the_wire_has_no_path_parameter_and_no_dot_segment():
    wire = quote(normalise("/certificates/filter;jsessionid=1/%2e%2e;/details/1"))

    assert wire == "certificates/details/1"


def test_full_scope_reaches_everything_and_unknown_scopes_nothing():
    assert scope_allows("full", "users/currentUser")
    assert not scope_allows("bundle-special", "certificates/filter")
