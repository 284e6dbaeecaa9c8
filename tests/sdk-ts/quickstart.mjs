// The README's TypeScript quick start, run against a local server by tests/it/sdk_ts.rs:
// the official SDK (@hookdeck/outpost-sdk) creates a tenant and a webhook destination,
// publishes an event and reads them back, with the SDK's response validation on.
//
// Environment: OUTPOST_URL (the server, /api/v1 appended unless present), OUTPOST_API_KEY,
// RECEIVER_URL (where the destination delivers). Prints one JSON line:
// {"tenant":…,"destination":…,"event":…,"secret":…}; exits non-zero on any failure.
import { Outpost } from "@hookdeck/outpost-sdk";
import { randomUUID } from "node:crypto";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

const base = required("OUTPOST_URL").replace(/\/+$/, "");
const serverURL = base.endsWith("/api/v1") ? base : `${base}/api/v1`;
const outpost = new Outpost({ serverURL, apiKey: required("OUTPOST_API_KEY") });

const tenantId = `ts-${randomUUID()}`;
const tenant = await outpost.tenants.upsert(tenantId);
check(tenant.id === tenantId, `tenant id ${tenant.id}`);

const destination = await outpost.destinations.create(tenantId, {
  type: "webhook",
  topics: ["user.created"],
  config: { url: required("RECEIVER_URL") },
});
check(destination.type === "webhook", `destination type ${destination.type}`);
check(typeof destination.credentials?.secret === "string", "destination secret");

const published = await outpost.publish({
  tenantId,
  topic: "user.created",
  data: { user_id: "u_1" },
});
check(!published.duplicate, "first publish is not a duplicate");
check(
  published.destinationIds.includes(destination.id),
  `matched destinations ${published.destinationIds}`,
);

const listed = await outpost.destinations.list(tenantId);
check(listed.some((d) => d.id === destination.id), "destination listed");

console.log(
  JSON.stringify({
    tenant: tenantId,
    destination: destination.id,
    event: published.id,
    secret: destination.credentials.secret,
  }),
);
