// The visitor's EIP-1193 wallet: account, network, balances, deposits and withdrawals.
import { BrowserProvider, Contract, Signature } from "ethers";

export const USER_REJECTED = 4001;
const UNKNOWN_CHAIN = 4902;
const PERMIT_TTL_S = 20 * 60;

/** A wallet error's EIP-1193 code, wherever ethers or the wallet put it. */
export function walletErrorCode(error) {
  return error?.code === "ACTION_REJECTED" ? USER_REJECTED
    : error?.info?.error?.code ?? error?.error?.code ?? error?.code;
}

export function walletErrorMessage(error) {
  if (walletErrorCode(error) === USER_REJECTED) return "You declined in your wallet.";
  const revert = error?.revert;
  if (revert?.name) return `The contract refused: ${revert.name}(${revert.args.join(", ")})`;
  return error?.shortMessage || error?.info?.error?.message || error?.message || String(error);
}

export class Wallet extends EventTarget {
  constructor(config) {
    super();
    this.config = config;
    this.ethereum = window.ethereum || null;
    this.account = null;
    this.chainId = null;
    this.provider = null;
  }

  get available() { return this.ethereum !== null; }
  get connected() { return this.account !== null; }
  get onRightChain() { return this.chainId === this.config.chainId; }
  get ready() { return this.connected && this.onRightChain; }

  async connect() {
    if (!this.available) throw new Error("No browser wallet found: install one (for example MetaMask) and reload.");
    const accounts = await this.ethereum.request({ method: "eth_requestAccounts" });
    this.account = accounts[0] || null;
    await this.readChain();
    if (!this.listening) {
      this.listening = true;
      this.ethereum.on?.("accountsChanged", (list) => { this.account = list[0] || null; this.changed(); });
      this.ethereum.on?.("chainChanged", () => this.readChain().then(() => this.changed()));
    }
    this.changed();
  }

  async readChain() {
    this.chainId = Number.parseInt(await this.ethereum.request({ method: "eth_chainId" }), 16);
    // ethers pins a provider to one network: start afresh whenever the wallet's changes.
    this.provider = new BrowserProvider(this.ethereum, "any");
  }

  changed() { this.dispatchEvent(new Event("change")); }

  /** wallet_switchEthereumChain, or wallet_addEthereumChain when the wallet does not know it. */
  async switchChain() {
    const chainId = this.config.chainIdHex;
    try {
      await this.ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (error) {
      if (walletErrorCode(error) !== UNKNOWN_CHAIN) throw error;
      await this.ethereum.request({
        method: "wallet_addEthereumChain",
        params: [{
          chainId,
          chainName: this.config.chainId === 31337 ? "SharedLLM devnet" : `SharedLLM (chain ${this.config.chainId})`,
          nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
          rpcUrls: [this.config.rpcUrl],
        }],
      });
    }
    await this.readChain();
    this.changed();
  }

  contract(name, runner) {
    return new Contract(this.config.addresses[name], this.config.abi[name], runner || this.provider);
  }

  async balances() {
    const token = this.contract("ShareToken");
    const market = this.contract("JobMarket");
    const [balance, escrow, pending] = await Promise.all([
      token.balanceOf(this.account),
      market.escrowOf(this.account),
      market.pendingWithdrawal(this.account),
    ]);
    const block = await this.provider.getBlock("latest");
    return { balance, escrow, pendingAmount: pending[0], readyAt: Number(pending[1]), now: block.timestamp };
  }

  /** Permit + depositWithPermit: one signature and one transaction, no standing allowance. */
  async deposit(amount, onStep = () => {}) {
    const signer = await this.provider.getSigner(this.account);
    const token = this.contract("ShareToken");
    const market = this.contract("JobMarket", signer);
    const [domainInfo, nonce, block] = await Promise.all([
      token.eip712Domain(), token.nonces(this.account), this.provider.getBlock("latest"),
    ]);
    const deadline = BigInt(block.timestamp + PERMIT_TTL_S);
    const domain = {
      name: domainInfo[1], version: domainInfo[2], chainId: domainInfo[3], verifyingContract: domainInfo[4],
    };
    const types = {
      Permit: [
        { name: "owner", type: "address" }, { name: "spender", type: "address" },
        { name: "value", type: "uint256" }, { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    };
    onStep("Sign the permit in your wallet…");
    const permit = { owner: this.account, spender: this.config.addresses.JobMarket, value: amount, nonce, deadline };
    const sig = Signature.from(await signer.signTypedData(domain, types, permit));
    onStep("Confirm the deposit transaction…");
    const tx = await market.depositWithPermit(amount, deadline, sig.v, sig.r, sig.s);
    onStep("Waiting for the deposit to be mined…");
    await tx.wait();
  }

  async requestWithdrawal(amount) {
    const market = this.contract("JobMarket", await this.provider.getSigner(this.account));
    await (await market.requestWithdrawal(amount)).wait();
  }

  async withdraw() {
    const market = this.contract("JobMarket", await this.provider.getSigner(this.account));
    await (await market.withdraw()).wait();
  }

  /** Sign a job exactly as the gateway built it (eth_signTypedData_v4, JSON string). */
  async signJob(typedData) {
    return this.ethereum.request({
      method: "eth_signTypedData_v4",
      params: [this.account, JSON.stringify(typedData)],
    });
  }
}
