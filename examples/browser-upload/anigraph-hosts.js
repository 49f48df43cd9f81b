// vod-js-sdk-v6 talks to fixed Tencent hosts: vod2.qcloud.com for ApplyUploadUGC/CommitUploadUGC
// and <bucket>.cos.<region>.myqcloud.com for the object. anigraph serves both on one address,
// so this rewrites those URLs before any request leaves (the SDK and the COS SDK inside it send
// everything through XMLHttpRequest). Load it before vod-js-sdk-v6.js; call use(baseUrl).
(function () {
  const TENCENT = /^https?:\/\/(vod2\.(qcloud|dnsv1)\.com|[^/]+\.myqcloud\.com)(?=\/|$)/;
  let base = null;
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    const text = String(url);
    return open.call(this, method, base ? text.replace(TENCENT, base) : text, ...rest);
  };
  window.anigraphHosts = {
    use(baseUrl) {
      base = String(baseUrl).replace(/\/+$/, "");
    },
  };
})();
