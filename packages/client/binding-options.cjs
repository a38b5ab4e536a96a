// How pkg-prebuilds names and finds the addon: prebuilds/sbx_native-linux-x64/node-napi-v8.node
// (Node-API 8: one build serves every Node >= 20), or build/Release/sbx_native.node.
// `executables` (ours, pkg-prebuilds ignores it): the programs the executor runs, by their path in
// the CMake build tree; a prebuild directory holds each of them next to the addon.
module.exports = { name: 'sbx_native', napi_versions: [8], executables: ['forkserver/sbx-forkserver'] };
