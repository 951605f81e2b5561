// call_begin / call_end: the capture policy around every intercepted call. Before the call:
// number it, describe its operands, ask the iteration tracker (peek only), decide what is sampled
// and copy the inputs (joined before the call when it overwrites them). After it: report a
// successful call to the tracker, name or discard the inputs, copy the outputs, join the copies
// into the caller's stream and queue the timeline row.
#include "runtime_state.hpp"

#include <cstring>

namespace cdma::capture {

using namespace rt;

namespace {

thread_local CallState t_call;
// Inputs copied before the call, enqueued by call_end once the status is known (then they get the
// names the tracker confirmed), or discarded if the call failed. Kept apart from CallState so that
// its buffer is reused from call to call.
thread_local std::vector<Item> t_pending;

std::uint32_t role_bit(const char* r) {
  if (std::strcmp(r, "x") == 0) return kRoleX;
  if (std::strcmp(r, "y") == 0) return kRoleY;
  if (std::strcmp(r, "dy") == 0) return kRoleDy;
  if (std::strcmp(r, "dx") == 0) return kRoleDx;
  return 0;
}
std::uint32_t op_bit(const char* op) {
  for (const auto& [n, b] : kOpNames)
    if (n == op) return b;
  return kOpOther;
}

}  // namespace

CallState* call_begin(CallSpec& cs) noexcept {
  State& st = S();
  CallState& s = t_call;
  try {
    s = CallState{};
    s.seq = st.next_call.fetch_add(1);
    st.n.calls++;
    s.t0 = mono_ns();
    s.flags = cs.flags;
    t_pending.clear();
    for (int i = 0; i < cs.n; ++i) s.described[i] = describe(st, cs.operands[i], s.descs[i]);
    {
      // Only peek: the call counts for iteration detection once it has succeeded (call_end).
      std::lock_guard lk(st.iter_mu);
      if (cs.phase == 0) {
        const TensorDesc& x = s.descs[0];
        s.anchor = IterationTracker::anchor_key(cs.op, cs.weight, x.dims, s.described[0] ? x.nd : 0);
        s.layer = st.tracker.peek_forward(cs.op, s.anchor);
      } else {
        s.layer = st.tracker.peek_backward(cs.op, cs.links, cs.nlinks);
      }
    }
    const Config& c = st.cfg;
    bool sampled = c.mode != Mode::kTimeline && st.data_ok && iteration_sampled(c, s.layer.iteration) &&
                   (c.ops & op_bit(cs.op)) && (c.phases & (cs.phase == 0 ? kPhaseForward : kPhaseBackward));
    bool any = false;
    for (int i = 0; i < cs.n; ++i) {
      s.want[i] = sampled && s.described[i] && (c.roles & role_bit(cs.operands[i].role)) && cs.operands[i].ptr;
      any = any || s.want[i];
    }
    if (any && (s.device_ok = device_gate(st, cs, s))) {
      if (push_ctx(st, s) && (ensure_ring(st) || (pop_ctx(st), false))) {
        for (int i = 0; i < cs.n; ++i) {
          if (!s.want[i] || cs.operands[i].output) continue;
          const bool inplace = overlaps(cs, s, i);
          capture_operand(st, cs, s, i, inplace, &t_pending);
          if (inplace) join(st, s, i);  // the copy must finish before the call overwrites the input
        }
        pop_ctx(st);
      } else {
        s.device_ok = false;
        s.flags |= spool::kTlUnsafe;
      }
    }
    if (!s.device_ok && any) {
      if (s.flags & spool::kTlGraphCapture)
        st.n.skipped_graph++;
      else
        st.n.skipped_unsafe++;
    }
  } catch (...) {
    disable("internal error before a call");
  }
  cupti_push(static_cast<std::uint64_t>(s.seq));
  return &s;
}

void call_end(CallSpec& cs, CallState* sp, int status) noexcept {
  cupti_pop();
  State& st = S();
  CallState& s = *sp;
  try {
    std::int64_t t1 = mono_ns();
    if (status != 0) s.flags |= spool::kTlFailed;
    bool keep = status == 0;
    if (keep) {
      std::lock_guard lk(st.iter_mu);
      s.layer = cs.phase == 0 ? st.tracker.on_forward(cs.op, s.anchor, cs.links, cs.nlinks)
                              : st.tracker.on_backward(cs.op, cs.links, cs.nlinks);
      // Another thread's call between peek and report can change the answer; the reported one
      // names the tensors, and decides the sampling again.
      keep = iteration_sampled(st.cfg, s.layer.iteration);
    }
    // Inputs copied before the call: written with the confirmed names, or (failed call) dropped.
    for (auto& it : t_pending) {
      if (keep) {
        name_item(cs, s, it, it.role);
      } else {
        it.discard = true;
        if (it.kind == Item::kTensor) st.budget_used.fetch_sub(static_cast<std::int64_t>(it.trec.data_bytes));
        if (status != 0) st.n.skipped_failed++;  // else: the reported iteration is not sampled
      }
      enqueue(std::move(it));
    }
    t_pending.clear();
    if (s.device_ok && st.active.load()) {
      if (push_ctx(st, s)) {
        if (keep)
          for (int i = 0; i < cs.n; ++i)
            if (s.want[i] && cs.operands[i].output) capture_operand(st, cs, s, i, false, nullptr);
        for (int i = 0; i < cs.n; ++i) join(st, s, i);
        pop_ctx(st);
      }
    }
    spool::TimelineRecord r{};
    r.call = s.seq;
    r.iteration = s.layer.iteration;
    r.layer_index = s.layer.layer_index;
    r.phase = static_cast<std::int8_t>(cs.phase);
    spool::put_str(r.op, cs.op);
    spool::put_str(r.layer, s.layer.layer.c_str());
    spool::put_str(r.api, cs.api);
    r.start_ns = s.t0;
    r.end_ns = t1;
    r.status = status;
    r.flags = s.flags;
    enqueue_raw_record(static_cast<std::uint16_t>(spool::RecordType::kTimeline), &r, sizeof(r));
  } catch (...) {
    disable("internal error after a call");
  }
}

}  // namespace cdma::capture
