// An MCP client not written here: the official TypeScript SDK's Client (@modelcontextprotocol/sdk,
// pinned in .ci/node) over streamable HTTP. Run by scripts/interop.py:
//
//   node scripts/interop_ts_client.mjs http://127.0.0.1:PORT/mcp VOICEMAIL_ID
//
// It calls download_voicemail for the voicemail, finds the resource_link in the content the SDK
// parsed (and checked against the tool's output schema), reads the link's uri with resources/read
// and prints one JSON object: the protocol version, the content types, the link's fields, the
// structured content's recording, what the read gave (its fields, the blob's length in bytes and
// sha256) and the content types of the same call with `inline: true`. It exits non-zero on any error.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../.ci/node/package.json", import.meta.url));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const clientModule = require.resolve("@modelcontextprotocol/sdk/client/index.js"); // <sdk>/dist/cjs/client/
const sdkVersion = JSON.parse(readFileSync(new URL("../../../package.json", `file://${clientModule}`))).version;

const [url, id] = process.argv.slice(2);
const client = new Client({ name: "relatel-mcp-interop-ts", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
try {
  const result = await client.callTool({ name: "download_voicemail", arguments: { id: Number(id) } });
  const link = result.content.find((block) => block.type === "resource_link");
  const report = {
    sdk: sdkVersion,
    protocolVersion: client.transport.protocolVersion ?? null,
    isError: result.isError ?? false,
    contentTypes: result.content.map((block) => block.type),
    link: link ?? null,
    recording: result.structuredContent?.voicemail?.recording ?? null,
  };
  if (link) {
    const read = await client.readResource({ uri: link.uri });
    report.read = read.contents.map(({ blob, text, ...fields }) => {
      const bytes = Buffer.from(blob ?? "", "base64");
      return {
        ...fields,
        text: text === undefined ? undefined : text.length,
        blobBytes: blob === undefined ? undefined : bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      };
    });
  }
  const inline = await client.callTool({ name: "download_voicemail", arguments: { id: Number(id), inline: true } });
  report.inlineContentTypes = inline.content.map((block) => block.type);
  const audio = inline.content.find((block) => block.type === "audio");
  report.inlineAudioSha256 = audio
    ? createHash("sha256").update(Buffer.from(audio.data, "base64")).digest("hex")
    : null;
  console.log(JSON.stringify(report));
} finally {
  await client.close();
}
