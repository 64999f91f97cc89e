// openid-client (node), unmodified, against a real authd: discovery through RFC 8414
// metadata, a client_credentials token, then RFC 7662 introspection and RFC 7009
// revocation authenticated as the client. Prints one JSON object for the test to read.
import * as client from "openid-client";

const [issuer, clientId, secret, method] = process.argv.slice(2);
const authentication = method === "client_secret_post"
  ? client.ClientSecretPost(secret)
  : client.ClientSecretBasic(secret);
const config = await client.discovery(new URL(issuer), clientId, undefined, authentication, {
  algorithm: "oauth2",
  execute: [client.allowInsecureRequests], // plain HTTP on loopback in the test only
});
const tokens = await client.clientCredentialsGrant(config, { scope: "read" });
const before = await client.tokenIntrospection(config, tokens.access_token);
await client.tokenRevocation(config, tokens.access_token);
const after = await client.tokenIntrospection(config, tokens.access_token);
console.log(JSON.stringify({ before, after }));
