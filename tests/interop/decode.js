// tests/interop/decode.js — the second oracle: decodes Confluent wire-format
// values with the npm @confluentinc/schemaregistry AvroDeserializer through
// the registry. argv: registry URL, topic, hex values...; prints a JSON
// list. Run with NODE_PATH=<the node_modules of scripts/test-npm.sh>.
const { SchemaRegistryClient, AvroDeserializer, SerdeType } = require('@confluentinc/schemaregistry');
(async () => {
  const [url, topic, ...hex] = process.argv.slice(2);
  const client = new SchemaRegistryClient({ baseURLs: [url] });
  const des = new AvroDeserializer(client, SerdeType.VALUE, {});
  const out = [];
  for (const h of hex) out.push(await des.deserialize(topic, Buffer.from(h, 'hex')));
  console.log(JSON.stringify(out, (k, v) => typeof v === 'bigint' ? Number(v) : v));
})().catch(e => { console.error(e); process.exit(1); });
