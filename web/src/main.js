// Wiring: configuration from the gateway, the wallet, the chat and the network view.
import { getConfig, getNetwork } from "./api.js";
import { Chat } from "./chat.js";
import { escapeHtml, parseShare, share, shortAddress } from "./format.js";
import { renderNetwork } from "./network.js";
import { Wallet, walletErrorMessage } from "./wallet.js";

const NETWORK_REFRESH_MS = 15000;
const BALANCE_REFRESH_MS = 10000; // a withdrawal becomes ready, a job settles elsewhere
const $ = (id) => document.getElementById(id);

function showPageError(message) {
  const banner = $("page-error");
  banner.hidden = !message;
  banner.textContent = message || "";
}

function walletStatus(message, kind = "") {
  const el = $("wallet-status");
  el.className = `status-line ${kind}`;
  el.textContent = message || "";
}

async function main() {
  let config;
  try {
    config = await getConfig();
  } catch (error) {
    showPageError(`The gateway cannot describe its chain: ${error.message}`);
    return;
  }
  $("model-chip").textContent = `${config.model.name} · ${config.model.numLayers} layers`;
  $("chain-chip").textContent = `chain ${config.chainId}`;
  $("foot").innerHTML = `JobMarket <code>${config.addresses.JobMarket}</code> · SHARE <code>${config.addresses.ShareToken}</code> · challenge window ${config.params.challengeWindow}s`;

  const wallet = new Wallet(config);
  const chat = new Chat({
    wallet,
    list: $("messages"),
    empty: $("chat-empty"),
    onMoneyMoved: (status) => {
      refreshBalances();
      if (status === "upheld") refreshNetwork(); // show the slash at once
    },
    onDeposit: (amount) => deposit(amount),
    onRetry: (prompt, maxTokens) => ask(prompt, maxTokens),
  });

  async function refreshBalances() {
    if (!wallet.ready) return;
    try {
      const b = await wallet.balances();
      setAmount($("balance"), b.balance);
      setAmount($("escrow"), b.escrow);
      const pending = $("pending");
      pending.hidden = b.pendingAmount === 0n;
      if (b.pendingAmount > 0n) {
        const ready = b.now >= b.readyAt;
        const wait = Math.max(0, b.readyAt - b.now);
        pending.innerHTML = `<span>Withdrawal of <b>${share(b.pendingAmount)} SHARE</b> ${ready ? "is ready" : `ready in ${formatWait(wait)}`}</span>
          <button class="small ${ready ? "primary" : ""}" id="withdraw" type="button" ${ready ? "" : "disabled"}>Withdraw</button>`;
        $("withdraw").addEventListener("click", () => run("Withdrawing…", () => wallet.withdraw(), "Withdrawn to your wallet."));
      }
    } catch (error) {
      walletStatus(`Could not read balances: ${walletErrorMessage(error)}`, "bad");
    }
  }

  function render() {
    const connected = wallet.connected;
    $("connect").hidden = connected;
    $("account").hidden = !connected;
    $("account").textContent = connected ? shortAddress(wallet.account) : "";
    $("account").title = wallet.account || "";
    const wrong = connected && !wallet.onRightChain;
    $("wrong-chain").hidden = !wrong;
    if (wrong) {
      $("wrong-chain-text").textContent = ` (chain ${wallet.chainId}); SharedLLM here runs on chain ${config.chainId}.`;
    }
    $("wallet-empty").hidden = wallet.ready;
    $("wallet-empty").textContent = wrong ? "Switch your wallet to the right network to see your SHARE." : "Connect a wallet to see your balance and escrow.";
    $("wallet-body").hidden = !wallet.ready;
    const canAsk = wallet.ready && !chat.busy;
    $("prompt").disabled = !wallet.ready;
    $("prompt").placeholder = wallet.ready ? "Ask something… (Enter to send)" : wrong ? "Switch network to ask" : "Connect your wallet, then ask something…";
    $("send").disabled = !canAsk;
    refreshBalances();
  }

  /** Run a wallet action with its progress in the wallet card; true if it went through. */
  async function run(pending, action, done) {
    walletStatus(pending, "waiting");
    for (const b of document.querySelectorAll(".wallet-card button")) b.disabled = true;
    try {
      await action((step) => walletStatus(step, "waiting"));
      walletStatus(done, "good");
      return true;
    } catch (error) {
      walletStatus(walletErrorMessage(error), "bad");
      return false;
    } finally {
      for (const b of document.querySelectorAll(".wallet-card button")) b.disabled = false;
      await refreshBalances();
    }
  }

  async function deposit(amount) {
    return run("Depositing…", (step) => wallet.deposit(amount, step), `Deposited ${share(amount)} SHARE into escrow.`);
  }

  wallet.addEventListener("change", render);
  $("connect").addEventListener("click", async () => {
    try {
      await wallet.connect();
      showPageError("");
    } catch (error) {
      showPageError(walletErrorMessage(error));
    }
  });
  $("switch-chain").addEventListener("click", async () => {
    try {
      await wallet.switchChain();
      showPageError("");
    } catch (error) {
      showPageError(`Could not switch network: ${walletErrorMessage(error)}`);
    }
  });
  $("deposit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    let amount;
    try {
      amount = parseShare($("deposit-amount").value);
    } catch (error) {
      walletStatus(error.message, "bad");
      return;
    }
    deposit(amount);
  });
  $("withdraw-form").addEventListener("submit", (event) => {
    event.preventDefault();
    let amount;
    try {
      amount = parseShare($("withdraw-amount").value);
    } catch (error) {
      walletStatus(error.message, "bad");
      return;
    }
    run("Requesting withdrawal…", () => wallet.requestWithdrawal(amount),
      `Withdrawal of ${share(amount)} SHARE requested; it can be taken after ${formatWait(config.params.withdrawalDelay)}.`);
  });
  $("withdraw-note").textContent = `Withdrawals wait ${formatWait(config.params.withdrawalDelay)}, so a job you signed can still be paid.`;

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const prompt = $("prompt").value.trim();
    if (!prompt || chat.busy || !wallet.ready) return;
    $("prompt").value = "";
    const maxTokens = Math.max(1, Math.min(512, Number.parseInt($("max-tokens").value, 10) || 48));
    await ask(prompt, maxTokens);
  });

  async function ask(prompt, maxTokens) {
    if (chat.busy || !wallet.ready) return;
    const asking = chat.ask(prompt, maxTokens);
    render();
    await asking;
    render();
  }
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });

  async function refreshNetwork() {
    try {
      const net = await getNetwork();
      renderNetwork(net, { strip: $("strip"), nodes: $("nodes"), slashes: $("slashes"), summary: $("network-summary") });
      document.body.dataset.networkLoaded = "1";
    } catch (error) {
      $("network-summary").innerHTML = `<span class="bad-text">${escapeHtml(error.message)}</span>`;
    }
  }
  $("refresh-network").addEventListener("click", refreshNetwork);
  refreshNetwork();
  setInterval(refreshNetwork, NETWORK_REFRESH_MS);
  setInterval(refreshBalances, BALANCE_REFRESH_MS);

  if (!wallet.available) {
    $("connect").textContent = "No wallet found";
    $("connect").disabled = true;
  } else {
    // A wallet that already trusts this page connects without a prompt.
    const accounts = await window.ethereum.request({ method: "eth_accounts" }).catch(() => []);
    if (accounts.length) await wallet.connect().catch(() => {});
  }
  render();
  document.body.dataset.ready = "1";
}

function setAmount(el, wei) {
  el.dataset.wei = wei.toString();
  el.title = `${wei} wei`;
  el.innerHTML = `${share(wei, 6)} <small>SHARE</small>`;
}

function formatWait(seconds) {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

main();
