// A simple PUT of one object to the COS-compatible endpoint on this origin, signed with the
// upload session's temporary credential (q-sign-algorithm=sha1, as cos-js-sdk-v5 signs).
import { hex, hmac } from "./api.js";

async function sha1Hex(text) {
  return hex(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text)));
}

/** The COS Authorization header for `method` on `path`, signing no headers or parameters. */
export async function cosAuthorization(secretId, secretKey, method, path) {
  const now = Math.floor(Date.now() / 1000);
  const keyTime = `${now - 60};${now + 3600}`;
  const formatString = `${method.toLowerCase()}\n${path}\n\n\n`;
  const stringToSign = `sha1\n${keyTime}\n${await sha1Hex(formatString)}\n`;
  const signKey = hex(await hmac("SHA-1", secretKey, keyTime));
  const signature = hex(await hmac("SHA-1", signKey, stringToSign));
  return [
    "q-sign-algorithm=sha1",
    `q-ak=${secretId}`,
    `q-sign-time=${keyTime}`,
    `q-key-time=${keyTime}`,
    "q-header-list=",
    "q-url-param-list=",
    `q-signature=${signature}`,
  ].join("&");
}

/** PUT `file` at `path` with XHR so that `onProgress(fraction)` can follow it. */
export async function putObject(path, file, certificate, onProgress) {
  const authorization = await cosAuthorization(
    certificate.SecretId,
    certificate.SecretKey,
    "PUT",
    path,
  );
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", path);
    xhr.setRequestHeader("Authorization", authorization);
    xhr.setRequestHeader("x-cos-security-token", certificate.Token);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        const message = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText);
        reject(new Error(`Upload refused (${xhr.status}): ${message ? message[1] : xhr.statusText}`));
      }
    });
    xhr.addEventListener("error", () => reject(new Error("Upload failed: network error.")));
    xhr.send(file);
  });
}
