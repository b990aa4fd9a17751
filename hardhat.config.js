import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  solidity: {
    version: "0.8.28",
    path: require.resolve("solc/soljson.js"),
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      // No metadata hash in the bytecode: builds in any folder give the same bytes, so the
      // artifacts shipped in the Python package stay byte-stable.
      metadata: { bytecodeHash: "none" },
    },
  },
  paths: { sources: "./contracts", tests: { solidity: "./contracts/test" } },
  // Sized so the whole `hardhat test solidity` stays under ~3 minutes on a 2-core machine.
  test: { solidity: { fuzz: { runs: 256 }, invariant: { runs: 128, depth: 64 } } },
});
