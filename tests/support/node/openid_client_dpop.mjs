// openid-client (node), unmodified, against a real authd with DPoP (RFC 9449) and
// token exchange (RFC 8693): discovery through RFC 8414 metadata, a DPoP key pair it
// generates itself, a DPoP-bound client_credentials token, a protected resource
// fetched with a DPoP proof (a service using authd-verifier's DPoP middleware), then
// the bound token exchanged for another audience with a proof by the same key.
// Prints one JSON object for the test to read.
import * as client from "openid-client";

const [issuer, clientId, secret, resourceUrl, audience] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, undefined,
  client.ClientSecretBasic(secret), {
    algorithm: "oauth2",
    execute: [client.allowInsecureRequests], // plain HTTP on loopback in the test only
  });
const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
const tokens = await client.clientCredentialsGrant(config, { scope: "orders:read" }, { DPoP });
const response = await client.fetchProtectedResource(
  config, tokens.access_token, new URL(resourceUrl), "GET", undefined, undefined, { DPoP });
const resource = await response.json();
const exchanged = await client.genericGrantRequest(
  config, "urn:ietf:params:oauth:grant-type:token-exchange", {
    subject_token: tokens.access_token,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    audience,
  }, { DPoP });
console.log(JSON.stringify({
  metadata_algs: config.serverMetadata().dpop_signing_alg_values_supported,
  token_type: tokens.token_type,
  access_token: tokens.access_token,
  resource_status: response.status,
  resource,
  exchanged_token_type: exchanged.token_type,
  issued_token_type: exchanged.issued_token_type,
  exchanged_token: exchanged.access_token,
}));
