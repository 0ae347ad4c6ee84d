"""Nothing secret reaches the log, even at DEBUG: not a password, a session cookie or a CSRF
token, whether the request succeeds or fails."""

from pathlib import Path

import httpx

from tests.support.production import is_access_line, log_lines, wait_for_line

FIRST_PASSWORD = "first-secret-passphrase-1"
SECOND_PASSWORD = "second-secret-passphrase-2"
WRONG_PASSWORD = "wrong-guess-passphrase-3"


def test_nothing_secret_is_logged(production_server: tuple[str, Path]) -> None:
    url, log = production_server
    credentials = {"email": "logs@example.com", "password": FIRST_PASSWORD}
    cookies: list[str] = []
    with httpx.Client(base_url=url, headers={"X-Request-ID": "secrets"}) as http:
        registered = http.post("/auth/register", json={**credentials, "display_name": "Logs"})
        login = http.post("/auth/login", json=credentials)
        cookies.append(login.headers["set-cookie"].split(";")[0])
        token = login.json()["csrf_token"]
        # The cookie is Secure (production) and this is plain HTTP: send it by hand.
        authenticated = {"Cookie": cookies[0], "X-CSRF-Token": token}
        changed = http.post(
            "/auth/password",
            json={"current_password": FIRST_PASSWORD, "new_password": SECOND_PASSWORD},
            headers=authenticated,
        )
        cookies.extend(value.split(";")[0] for value in changed.headers.get_list("set-cookie"))
        refused = http.post("/auth/login", json={**credentials, "password": WRONG_PASSWORD})
    wait_for_line(log, lambda line: is_access_line(line, "secrets") and line["status"] == 401)

    assert (registered.status_code, login.status_code, refused.status_code) == (201, 200, 401)
    assert changed.is_success, changed.text
    text = log.read_text()
    assert any(line["request_id"] == "secrets" for line in log_lines(log))
    secrets = [FIRST_PASSWORD, SECOND_PASSWORD, WRONG_PASSWORD, token]
    secrets += [
        value for cookie in cookies if len(value := cookie.partition("=")[2].strip('"')) > 8
    ]
    for secret in secrets:
        assert secret not in text, secret
