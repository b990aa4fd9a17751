// The conversation: each answer streams in, asks the wallet to sign its job, and keeps
// its receipt (route, tokens, cost, on-chain status) up to date.
import { answerSignature, getJob, streamChat } from "./api.js";
import { escapeHtml, nodeColour, share, shortAddress, shortId } from "./format.js";
import { USER_REJECTED, walletErrorCode, walletErrorMessage } from "./wallet.js";

const POLL_MS = 1500;
const STATUS_TEXT = {
  signed: "signed", served: "served", committed: "committed", finalized: "finalized",
  challenged: "challenged", "under review": "under review", upheld: "upheld", expired: "expired",
  refunded: "refunded", unfunded: "not charged",
};

export class Chat {
  constructor({ wallet, list, empty, onMoneyMoved, onDeposit, onRetry }) {
    this.wallet = wallet;
    this.onRetry = onRetry;
    this.list = list;
    this.empty = empty;
    this.onMoneyMoved = onMoneyMoved;
    this.onDeposit = onDeposit;
    this.history = [];
    this.busy = false;
  }

  async ask(prompt, maxTokens) {
    this.busy = true;
    this.empty.hidden = true;
    this.list.append(bubble("user", `<div class="text">${escapeHtml(prompt)}</div>`));
    const turn = new Turn(this.list, prompt, maxTokens);
    const messages = [...this.history, { role: "user", content: prompt }];
    try {
      await streamChat(
        { client: this.wallet.account, messages, max_tokens: maxTokens },
        (name, data) => this.onEvent(turn, name, data),
      );
      if (turn.done) this.history = [...messages, { role: "assistant", content: turn.text }];
    } catch (error) {
      turn.fail(error.code || "ERROR", error.message || String(error));
    } finally {
      this.busy = false;
      turn.finishStreaming();
    }
  }

  async onEvent(turn, name, data) {
    if (name === "route") turn.showRoute(data);
    else if (name === "sign") await this.sign(turn, data);
    else if (name === "signed") turn.signed(data.jobId);
    else if (name === "token") turn.append(data.text);
    else if (name === "done") {
      turn.finish(data);
      for (const job of data.jobs) this.follow(turn, job.jobId);
    } else if (name === "error") this.showError(turn, data);
  }

  /** Ask the question of a turn that could not be paid for again, as a new turn. */
  async retry(turn) {
    if (this.busy) return;
    await this.onRetry(turn.prompt, turn.maxTokens);
  }

  async sign(turn, { jobId, typedData, maxCost }) {
    turn.status(`Sign job <code>${shortId(jobId)}</code> in your wallet — it lets this route charge at most <b>${share(maxCost)} SHARE</b>.`, "waiting");
    let answer;
    try {
      answer = { signature: await this.wallet.signJob(typedData) };
    } catch (error) {
      if (walletErrorCode(error) !== USER_REJECTED) turn.note(walletErrorMessage(error), "bad");
      answer = { refused: true };
    }
    await answerSignature(jobId, answer);
  }

  showError(turn, error) {
    if (error.code === "SIGNATURE_REFUSED") {
      turn.refused();
    } else if (error.code === "InsufficientEscrow") {
      const have = BigInt(error.details?.have ?? 0);
      const need = BigInt(error.details?.need ?? 0);
      turn.shortEscrow(have, need, (amount) => this.onDeposit(amount), () => this.retry(turn));
    } else {
      turn.fail(error.code, error.message);
    }
  }

  /** Poll a job until it settles, so the receipt shows committed → finalized or challenged. */
  async follow(turn, jobId) {
    let last = null;
    for (;;) {
      let job;
      try {
        job = await getJob(jobId);
      } catch {
        await sleep(POLL_MS * 2);
        continue;
      }
      if (job.status !== last) {
        last = job.status;
        turn.jobStatus(job);
        this.onMoneyMoved(job.status);
      } else if (job.status === "committed") {
        turn.jobStatus(job); // the challenge countdown
      }
      if (job.settled) return;
      await sleep(POLL_MS);
    }
  }
}

class Turn {
  constructor(list, prompt, maxTokens) {
    this.prompt = prompt;
    this.maxTokens = maxTokens;
    this.el = bubble("assistant", `
      <div class="route" hidden></div>
      <div class="text streaming"></div>
      <div class="notes"></div>
      <div class="receipt" hidden></div>`);
    list.append(this.el);
    this.textEl = this.el.querySelector(".text");
    this.routeEl = this.el.querySelector(".route");
    this.notesEl = this.el.querySelector(".notes");
    this.receiptEl = this.el.querySelector(".receipt");
    this.text = "";
    this.done = false;
    this.jobs = new Map();
    this.statusEl = null;
    this.scroll();
  }

  scroll() { this.el.scrollIntoView({ block: "end", behavior: "smooth" }); }

  status(html, kind = "") {
    if (!this.statusEl) {
      this.statusEl = document.createElement("div");
      this.notesEl.append(this.statusEl);
    }
    this.statusEl.className = `note ${kind}`;
    this.statusEl.innerHTML = html;
    this.scroll();
  }

  note(html, kind = "") {
    const div = document.createElement("div");
    div.className = `note ${kind}`;
    div.innerHTML = html;
    this.notesEl.append(div);
    this.scroll();
    return div;
  }

  showRoute({ hops, pricePerToken, maxCost }) {
    if (!this.routeEl.hidden) {
      this.note("A node on the route stopped answering. The answer goes on through the new route above, under a new job your wallet signs; each job pays only for the tokens it served.", "warn");
    }
    this.routeEl.hidden = false;
    this.routeEl.innerHTML = hops.map((h) => `
      <span class="hop" style="--c:${nodeColour(h.address)}" title="${escapeHtml(h.url)}">
        <i></i>${shortAddress(h.address)} <small>layers ${h.span[0]}–${h.span[1] - 1}</small>
      </span>`).join('<span class="arrow">→</span>')
      + `<span class="price muted small">${share(pricePerToken)} SHARE/position (prompt and answer tokens) · at most ${share(maxCost)}</span>`;
  }

  signed(jobId) {
    this.status(`Job <code>${shortId(jobId)}</code> signed by your wallet.`, "good");
  }

  append(piece) {
    this.text += piece;
    this.textEl.textContent = this.text;
    this.scroll();
  }

  finishStreaming() { this.textEl.classList.remove("streaming"); }

  finish({ tokens, cost, jobs }) {
    this.done = true;
    if (this.statusEl) this.statusEl.remove();
    this.statusEl = null;
    this.receiptEl.hidden = false;
    this.receiptEl.innerHTML = `
      <span class="cost" data-wei="${cost}" title="${cost} wei">${share(cost)} SHARE</span>
      <span class="muted" title="Tokens the route processed: your prompt and the answer">${tokens} tokens</span>
      ${jobs.map((j) => `
        <span class="job" data-job="${j.jobId}">
          job <code title="${j.jobId}">${shortId(j.jobId)}</code>
          <span class="pill served" data-status="served">served</span>
        </span>`).join("")}`;
    this.scroll();
  }

  jobStatus(job) {
    const pill = this.receiptEl.querySelector(`[data-job="${job.jobId}"] .pill`);
    if (!pill) return;
    pill.className = `pill ${job.status}`;
    pill.dataset.status = job.status;
    let text = STATUS_TEXT[job.status] || job.status;
    const dispute = job.dispute;
    if (job.status === "committed" && job.challengeEndsAt) {
      const left = Math.max(0, Math.round(job.challengeEndsAt - Date.now() / 1000));
      text += left > 0 ? ` · challenge window ${left}s` : " · finalizing";
    }
    if (job.status === "under review" && dispute) {
      text += ` · ${dispute.revealed}/${dispute.jurors} votes revealed`;
    }
    if (dispute && dispute.phase === "rejected" && job.status !== "upheld") {
      text += " · dispute rejected";
    }
    if (job.batch) text += ` · batch #${job.batch.batchId}`;
    pill.textContent = text;
    pill.title = {
      committed: "Submitted on-chain; the payment is locked until verifiers' challenge window ends.",
      finalized: "Paid to the route.",
      challenged: "A verifier disputed a hop of this answer: the payment is frozen until a jury decides.",
      "under review": "A jury of verifiers is recomputing the disputed hop and voting.",
      upheld: "A hop was found at fault: it was slashed and your payment went back to your escrow.",
      refunded: "The node that posted this answer's batch was proven to have billed it wrongly: your payment went back to your escrow.",
      unfunded: "Your escrow did not cover this answer when its batch was posted: nothing was charged.",
    }[job.status] || "";
    if (job.status === "challenged" && !this.disputeNoted) {
      this.disputeNoted = true;
      this.note(`A verifier disputed hop ${dispute ? dispute.hop : "?"} of this answer; a jury decides whether it was at fault. Your payment is frozen meanwhile.`, "warn");
    }
    if (job.status === "upheld") {
      this.receiptEl.classList.add("refunded");
      this.note("A hop of this answer was found at fault: the node was slashed and your payment returned to your escrow.", "bad");
    }
    if (job.status === "refunded") {
      this.receiptEl.classList.add("refunded");
      this.note("The batch this answer was billed in was proven wrong: its poster was slashed and your payment returned to your escrow.", "bad");
    }
    if (dispute && dispute.phase === "rejected" && !this.rejectNoted) {
      this.rejectNoted = true;
      this.note("The jury rejected the dispute: the route did its work and is paid.", "good");
    }
  }

  refused() {
    if (this.statusEl) this.statusEl.remove();
    this.statusEl = null;
    this.textEl.hidden = true;
    this.note("<b>You declined to sign.</b> Nothing was signed and nothing was charged.", "refused");
  }

  shortEscrow(have, need, deposit, retry) {
    if (this.statusEl) this.statusEl.remove();
    this.statusEl = null;
    this.textEl.hidden = true;
    const suggestion = roundUpShare(need - have);
    const div = this.note(`
      <b>Not enough in escrow.</b> It holds ${share(have)} SHARE; this answer may cost up to
      ${share(need)} SHARE. Nothing was signed or charged.
      <button class="primary small deposit-inline" type="button">Deposit ${share(suggestion)} SHARE</button>`, "warn");
    div.querySelector("button").addEventListener("click", async (event) => {
      event.target.disabled = true;
      if (!(await deposit(suggestion))) {
        event.target.disabled = false;
        return;
      }
      div.className = "note good";
      div.innerHTML = `Deposited ${share(suggestion)} SHARE into your escrow.
        <button class="primary small ask-again" type="button">Ask again</button>`;
      div.querySelector("button").addEventListener("click", (e) => {
        e.target.disabled = true;
        retry();
      });
    });
  }

  fail(code, message) {
    if (this.statusEl) this.statusEl.remove();
    this.statusEl = null;
    this.note(`<b>${escapeHtml(code)}</b> ${escapeHtml(message)}`, "bad");
  }
}

function bubble(role, inner) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  li.innerHTML = `<div class="who">${role === "user" ? "You" : "Network"}</div><div class="body">${inner}</div>`;
  return li;
}

/** What to offer to deposit: the shortfall rounded up to a whole SHARE, at least 1. */
function roundUpShare(wei) {
  const one = 10n ** 18n;
  const whole = (wei + one - 1n) / one;
  return (whole < 1n ? 1n : whole) * one;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
