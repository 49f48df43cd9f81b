// Drives anigraph with Tencent's official Node.js SDK, unchanged; prints one JSON object.
// Usage: node scenario.js <describe|full>; ENDPOINT, SECRET_ID, SECRET_KEY, FILE_ID,
// SIGN_METHOD and REQ_METHOD come from the environment.
"use strict";
const tencentcloud = require("tencentcloud-sdk-nodejs-vod");

const VodClient = tencentcloud.vod.v20180717.Client;
const env = process.env;
const client = new VodClient({
  credential: { secretId: env.SECRET_ID, secretKey: env.SECRET_KEY },
  region: "",
  profile: {
    signMethod: env.SIGN_METHOD,
    httpProfile: { endpoint: env.ENDPOINT, protocol: "http://", reqMethod: env.REQ_METHOD },
  },
});

async function waitForTask(taskId) {
  const deadline = Date.now() + 90000;
  for (;;) {
    const detail = await client.DescribeTaskDetail({ TaskId: taskId });
    if (detail.Status === "FINISH" || Date.now() > deadline) return detail;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

async function full() {
  const created = await client.CreateAnimatedGraphicsTemplate({
    Name: "node-sdk", Format: "gif", Fps: 5, Width: 128,
  });
  const definition = created.Definition;
  const described = await client.DescribeAnimatedGraphicsTemplates({ Definitions: [definition] });
  const processed = await client.ProcessMedia({
    FileId: env.FILE_ID,
    MediaProcessTask: {
      AnimatedGraphicTaskSet: [{ Definition: definition, StartTimeOffset: 0, EndTimeOffset: 1 }],
    },
  });
  const detail = await waitForTask(processed.TaskId);
  await client.DeleteAnimatedGraphicsTemplate({ Definition: definition });
  return { definition, described, taskId: processed.TaskId, detail };
}

async function describe() {
  return { described: await client.DescribeAnimatedGraphicsTemplates({ Limit: 100 }) };
}

(process.argv[2] === "full" ? full() : describe()).then(
  (result) => process.stdout.write(JSON.stringify(result) + "\n"),
  (error) => {
    process.stdout.write(JSON.stringify({ error: { code: error.code, message: error.message } }) + "\n");
    process.exitCode = 1;
  },
);
