"""test_auth.py: the auth family through nginx (docs/DESIGN.md §4.3): token,
verify, refresh rotation with reuse detection, revoke, revoked API keys,
and forged tokens (alg none, expired, another secret)."""
import time

import sp
from sp import bearer, get, post


class TokenTest(sp.Case):
    def test_token_with_valid_key(self):
        r = post("/api/auth/token", {"api_key": sp.API_KEY})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        doc = r.json
        self.assertEqual(doc["token_type"], "Bearer")
        self.assertIsInstance(doc["expires_in"], int)
        self.assertGreater(doc["expires_in"], 0)
        for k in ("access_token", "refresh_token"):
            self.assertEqual(doc[k].count("."), 2)
        self.assertNotEqual(doc["access_token"], doc["refresh_token"])

    def test_wrong_key(self):
        bad = "spk_" + "A" * 43  # right format, unknown key
        r = post("/api/auth/token", {"api_key": bad})
        self.assertError(r, 401, "unauthenticated")

    def test_key_of_wrong_format(self):
        for bad in ("", "nope", "spk_short", sp.API_KEY + "x",
                    "xyz_" + sp.API_KEY[4:], sp.API_KEY[:-1] + "/"):
            with self.subTest(key=bad):
                r = post("/api/auth/token", {"api_key": bad})
                self.assertError(r, 401, "unauthenticated")

    def test_missing_api_key(self):
        r = post("/api/auth/token", {"key": sp.API_KEY})
        self.assertError(r, 400, "invalid_argument", "api_key")
        r = post("/api/auth/token", {"api_key": None})
        self.assertError(r, 400, "invalid_argument", "api_key")

    def test_api_key_wrong_type(self):
        for v in (123, True, ["x"], {"k": "v"}):
            with self.subTest(value=v):
                r = post("/api/auth/token", {"api_key": v})
                self.assertError(r, 400, "invalid_argument", "api_key")

    def test_malformed_json(self):
        for body in ('{"api_key": ', "{api_key: 1}", "not json",
                     '{"api_key":"x"} trailing'):
            with self.subTest(body=body):
                r = post("/api/auth/token", body,
                         headers={"Content-Type": "application/json"})
                self.assertError(r, 400, "invalid_json")

    def test_json_array_body(self):
        r = post("/api/auth/token", [{"api_key": sp.API_KEY}])
        self.assertError(r, 400, ("invalid_json", "invalid_argument"))

    def test_empty_body(self):
        r = post("/api/auth/token", b"",
                 headers={"Content-Type": "application/json"})
        self.assertError(r, 400, ("invalid_json", "invalid_argument"))

    def test_wrong_content_type(self):
        body = '{"api_key":"%s"}' % sp.API_KEY
        for ctype in ("text/plain", "application/x-www-form-urlencoded",
                      "application/jsonp"):
            with self.subTest(ctype=ctype):
                r = post("/api/auth/token", body,
                         headers={"Content-Type": ctype})
                self.assertError(r, 415, "unsupported_media_type")
        r = post("/api/auth/token", body)  # no Content-Type at all
        self.assertError(r, 415, "unsupported_media_type")
        r = post("/api/auth/token", body, headers={
            "Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 200, r)

    def test_body_too_large(self):
        body = '{"api_key":"%s","pad":"%s"}' % (sp.API_KEY, "x" * 17000)
        r = post("/api/auth/token", body,
                 headers={"Content-Type": "application/json"})
        self.assertError(r, 413, "payload_too_large")
        # Just under the limit is read (and fails only on its content).
        body = '{"api_key":"%s","pad":"%s"}' % (sp.API_KEY, "x" * 16000)
        r = post("/api/auth/token", body,
                 headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r)

    def test_chunked_body(self):
        body = ('{"api_key":"%s"}' % sp.API_KEY).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        ans = sp.raw(b"POST /api/auth/token HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
                     b"\r\n" + chunked)
        self.assertEqual(sp.raw_status(ans), 200, ans[:300])


class VerifyTest(sp.Case):
    def test_verify_bearer(self):
        pair = sp.token_pair()
        doc = self.assertVerifies(bearer(pair["access_token"]), "admin")
        self.assertIsInstance(doc["exp"], int)
        self.assertGreater(doc["exp"], time.time())

    def test_verify_bearer_case_insensitive_scheme(self):
        pair = sp.token_pair()
        self.assertVerifies({"Authorization": "bearer " + pair["access_token"]})

    def test_verify_api_key(self):
        doc = self.assertVerifies({"X-API-Key": sp.API_KEY}, "admin")
        self.assertIsNone(doc["exp"])

    def test_verify_without_credentials(self):
        r = get("/api/auth/verify")
        self.assertError(r, 401, "unauthenticated")
        self.assertIn("Bearer", r.headers.get("WWW-Authenticate", ""))

    def test_verify_bad_credentials(self):
        for h in ({"Authorization": "Bearer"}, {"Authorization": "Bearer "},
                  {"Authorization": "Basic YWRtaW46YWRtaW4="},
                  {"Authorization": "Bearer not.a.token"},
                  {"X-API-Key": ""}, {"X-API-Key": "spk_" + "B" * 43}):
            with self.subTest(headers=h):
                r = self.assertUnauthenticated(h)
                self.assertIn("Bearer", r.headers.get("WWW-Authenticate", ""))

    def test_bad_api_key_wins_over_good_bearer(self):
        pair = sp.token_pair()
        h = bearer(pair["access_token"])
        h["X-API-Key"] = "spk_" + "C" * 43
        self.assertUnauthenticated(h)


class RefreshTest(sp.Case):
    def test_rotation_and_reuse_revokes_family(self):
        first = sp.token_pair()
        r = post("/api/auth/refresh", {"refresh_token": first["refresh_token"]})
        self.assertEqual(r.status, 200, r)
        second = r.json
        self.assertNotEqual(second["refresh_token"], first["refresh_token"])
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertEqual(second["token_type"], "Bearer")
        self.assertVerifies(bearer(second["access_token"]), "admin")
        # Replaying the rotated token is theft: 401 and the family dies,
        # so the legitimate newest refresh token is dead too.
        r = post("/api/auth/refresh", {"refresh_token": first["refresh_token"]})
        self.assertError(r, 401, "unauthenticated")
        r = post("/api/auth/refresh", {"refresh_token": second["refresh_token"]})
        self.assertError(r, 401, "unauthenticated")
        # Another sign-in (another family) is not affected.
        other = sp.token_pair()
        r = post("/api/auth/refresh", {"refresh_token": other["refresh_token"]})
        self.assertEqual(r.status, 200, r)

    def test_chain_of_rotations(self):
        pair = sp.token_pair()
        for _ in range(3):
            r = post("/api/auth/refresh",
                     {"refresh_token": pair["refresh_token"]})
            self.assertEqual(r.status, 200, r)
            pair = r.json
        self.assertVerifies(bearer(pair["access_token"]))

    def test_access_token_as_refresh(self):
        pair = sp.token_pair()
        r = post("/api/auth/refresh", {"refresh_token": pair["access_token"]})
        self.assertError(r, 401, "unauthenticated")

    def test_refresh_token_as_access(self):
        pair = sp.token_pair()
        self.assertUnauthenticated(bearer(pair["refresh_token"]))

    def test_refresh_bad_input(self):
        r = post("/api/auth/refresh", {})
        self.assertError(r, 400, "invalid_argument", "refresh_token")
        r = post("/api/auth/refresh", {"refresh_token": 5})
        self.assertError(r, 400, "invalid_argument", "refresh_token")
        r = post("/api/auth/refresh", {"refresh_token": "x.y.z"})
        self.assertError(r, 401, "unauthenticated")
        r = post("/api/auth/refresh", {"refresh_token": "a" * 5000})
        self.assertIn(r.status, (400, 401), r)
        self.assertError(r, r.status)


class RevokeTest(sp.Case):
    def test_revoke_access_token(self):
        pair = sp.token_pair()
        h = bearer(pair["access_token"])
        self.assertVerifies(h)
        r = post("/api/auth/revoke", headers=h)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json.get("revoked"), True)
        self.assertUnauthenticated(h)
        # The refresh token of that sign-in still works (only the access
        # token was revoked).
        r = post("/api/auth/refresh", {"refresh_token": pair["refresh_token"]})
        self.assertEqual(r.status, 200, r)

    def test_revoke_with_refresh_token_kills_family(self):
        pair = sp.token_pair()
        r = post("/api/auth/revoke", {"refresh_token": pair["refresh_token"]},
                 headers=bearer(pair["access_token"]))
        self.assertEqual(r.status, 200, r)
        r = post("/api/auth/refresh", {"refresh_token": pair["refresh_token"]})
        self.assertError(r, 401, "unauthenticated")
        self.assertUnauthenticated(bearer(pair["access_token"]))

    def test_revoke_family_later_generation(self):
        pair = sp.token_pair()
        r = post("/api/auth/refresh", {"refresh_token": pair["refresh_token"]})
        self.assertEqual(r.status, 200, r)
        newer = r.json
        # Revoking with the newest refresh token also kills the family.
        r = post("/api/auth/revoke", {"refresh_token": newer["refresh_token"]},
                 headers={"X-API-Key": sp.API_KEY})
        self.assertEqual(r.status, 200, r)
        r = post("/api/auth/refresh", {"refresh_token": newer["refresh_token"]})
        self.assertError(r, 401, "unauthenticated")

    def test_revoke_requires_credentials(self):
        r = post("/api/auth/revoke", {})
        self.assertError(r, 401, "unauthenticated")

    def test_revoke_other_subjects_refresh_token(self):
        _, key, _ = sp.create_key()
        theirs = sp.token_pair(key)
        r = post("/api/auth/revoke", {"refresh_token": theirs["refresh_token"]},
                 headers={"X-API-Key": sp.API_KEY})
        self.assertError(r, 400, "invalid_argument", "refresh_token")
        r = post("/api/auth/refresh", {"refresh_token": theirs["refresh_token"]})
        self.assertEqual(r.status, 200, r)

    def test_revoke_bad_refresh_token(self):
        pair = sp.token_pair()
        r = post("/api/auth/revoke", {"refresh_token": pair["access_token"]},
                 headers=bearer(pair["access_token"]))
        self.assertError(r, 400, "invalid_argument", "refresh_token")
        r = post("/api/auth/revoke", {"refresh_token": 1},
                 headers=bearer(pair["access_token"]))
        self.assertError(r, 400, "invalid_argument", "refresh_token")


class ApiKeyTest(sp.Case):
    def test_revoked_key_and_its_tokens(self):
        kid, key, name = sp.create_key()
        pair = sp.token_pair(key)
        self.assertVerifies({"X-API-Key": key}, name)
        self.assertVerifies(bearer(pair["access_token"]), name)
        p = sp.admin("key", "revoke", kid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertUnauthenticated({"X-API-Key": key})
        r = post("/api/auth/token", {"api_key": key})
        self.assertError(r, 401, "unauthenticated")
        self.assertUnauthenticated(bearer(pair["access_token"]))
        r = post("/api/auth/refresh", {"refresh_token": pair["refresh_token"]})
        self.assertError(r, 401, "unauthenticated")
        # The first key is untouched.
        self.assertVerifies({"X-API-Key": sp.API_KEY}, "admin")
        # Revoking again: no such key.
        p = sp.admin("key", "revoke", kid)
        self.assertNotEqual(p.returncode, 0)

    def test_revoke_by_name_revokes_every_key(self):
        kid1, key1, name = sp.create_key()
        kid2, key2, _ = sp.create_key(name)
        self.assertNotEqual(kid1, kid2)
        self.assertVerifies({"X-API-Key": key1}, name)
        self.assertVerifies({"X-API-Key": key2}, name)
        p = sp.admin("key", "revoke", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertUnauthenticated({"X-API-Key": key1})
        self.assertUnauthenticated({"X-API-Key": key2})

    def test_key_list_never_shows_keys(self):
        kid, key, name = sp.create_key()
        p = sp.admin("key", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(kid, p.stdout)
        self.assertIn(name, p.stdout)
        self.assertNotIn(key, p.stdout)

    def test_key_create_bad_name(self):
        for name in ("a/b", "a b", "x" * 65):
            with self.subTest(name=name):
                p = sp.admin("key", "create", name)
                self.assertNotEqual(p.returncode, 0)


class ForgedTokenTest(sp.Case):
    def test_python_signer_is_right(self):
        # Guard for the negative cases below: a well-formed token signed
        # here with JWT_SECRET is accepted.
        self.assertTrue(sp.SECRET, "JWT_SECRET is not in the environment")
        self.assertVerifies(bearer(sp.make_jwt(sp.claims())), "forger")

    def test_alg_none(self):
        c = sp.claims()
        for header in ({"alg": "none"}, {"alg": "none", "typ": "JWT"},
                       {"alg": "NONE"}):
            with self.subTest(header=header):
                self.assertUnauthenticated(
                    bearer(sp.make_jwt(c, header=header, sign=False)))
                self.assertUnauthenticated(
                    bearer(sp.make_jwt(c, header=header)))

    def test_other_algs(self):
        for alg in ("HS384", "HS512", "RS256"):
            with self.subTest(alg=alg):
                self.assertUnauthenticated(bearer(sp.make_jwt(sp.claims(), alg=alg)))

    def test_extra_header_fields(self):
        for extra in ({"kid": "k"}, {"crit": ["exp"]}, {"jku": "http://x.test"}):
            with self.subTest(extra=extra):
                header = dict({"alg": "HS256", "typ": "JWT"}, **extra)
                self.assertUnauthenticated(
                    bearer(sp.make_jwt(sp.claims(), header=header)))

    def test_expired(self):
        now = int(time.time())
        tok = sp.make_jwt(sp.claims(iat=now - 600, exp=now - 60))
        self.assertUnauthenticated(bearer(tok))

    def test_not_yet_valid(self):
        now = int(time.time())
        tok = sp.make_jwt(sp.claims(nbf=now + 600))
        self.assertUnauthenticated(bearer(tok))

    def test_missing_claims(self):
        for drop in ("exp", "sub", "jti", "kid", "token_use"):
            with self.subTest(missing=drop):
                tok = sp.make_jwt(sp.claims(**{drop: None}))
                self.assertUnauthenticated(bearer(tok))

    def test_bad_sub(self):
        for sub in ("../admin", "a b", "a:b", "x" * 65, ""):
            with self.subTest(sub=sub):
                tok = sp.make_jwt(sp.claims(sub=sub))
                self.assertUnauthenticated(bearer(tok))

    def test_other_secret(self):
        tok = sp.make_jwt(sp.claims(), secret="not-the-secret-" + "z" * 40)
        self.assertUnauthenticated(bearer(tok))

    def test_tampered(self):
        tok = sp.make_jwt(sp.claims(sub="alice"))
        head, _, sig = tok.split(".")
        body = sp.b64url('{"sub":"admin","kid":"key_x","jti":"at_1",'
                         '"token_use":"access","exp":%d}' % (time.time() + 300))
        self.assertUnauthenticated(bearer(f"{head}.{body}.{sig}"))

    def test_segments(self):
        tok = sp.make_jwt(sp.claims())
        a, b, c = tok.split(".")
        for bad in (f"{a}.{b}", f"{a}.{b}.{c}.{c}", f"{a}.{b}.{c}.", "..."):
            with self.subTest(token=bad[:40]):
                self.assertUnauthenticated(bearer(bad))

    def test_forged_refresh_token(self):
        # A refresh token forged with alg none cannot be rotated.
        c = sp.claims(token_use="refresh", fam="fam_forged", jti="rt_forged")
        tok = sp.make_jwt(c, header={"alg": "none"}, sign=False)
        r = post("/api/auth/refresh", {"refresh_token": tok})
        self.assertError(r, 401, "unauthenticated")
        tok = sp.make_jwt(c, secret="wrong-" + "q" * 40)
        r = post("/api/auth/refresh", {"refresh_token": tok})
        self.assertError(r, 401, "unauthenticated")
