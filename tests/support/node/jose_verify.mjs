// jose (node), unmodified, verifying authd access tokens as a downstream service in
// another language would: the JWKS fetched over HTTP (createRemoteJWKSet), the three
// algorithms authd signs with pinned, typ at+jwt and the issuer required.
// argv: JWKS_URL ISSUER TOKENS_JSON. Prints one JSON array: per token
// {ok, alg, kid, sub} or {ok: false, code}.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksUrl, issuer, tokensJson] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUrl));
const results = [];
for (const token of JSON.parse(tokensJson)) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer, algorithms: ["RS256", "ES256", "EdDSA"], typ: "at+jwt", clockTolerance: 30,
    });
    results.push({ ok: true, alg: protectedHeader.alg, kid: protectedHeader.kid, sub: payload.sub });
  } catch (error) {
    results.push({ ok: false, code: String(error.code ?? error.name) });
  }
}
console.log(JSON.stringify(results));
