// One operand of a call: its description (given, or from cuDNN's own getters), the in-place check,
// the asynchronous copy into the ring (or the in-situ kernel's counts), and the record it becomes.
#include "runtime_state.hpp"

#include "../../kernels/zero_stats.cuh"

#include <algorithm>
#include <cstring>

namespace cdma::capture::rt {

namespace {

// The call's fields of a tensor or stats record (spool.hpp): both have them under the same names.
template <class Rec>
void fill_names(CallSpec& cs, CallState& s, const char* role, Rec& r) {
  r.call = s.seq;
  r.iteration = s.layer.iteration;
  r.layer_index = s.layer.layer_index;
  r.phase = static_cast<std::uint8_t>(cs.phase);
  spool::put_str(r.op, cs.op);
  spool::put_str(r.role, role);
  spool::put_str(r.layer, s.layer.layer.c_str());
}

// The record flags of operand i: what the trace's `offload` attribute will say (docs/spec/TRACE_FORMAT.md).
// Forward-phase inputs of role x are offloaded unless an output of the same call overwrites them.
std::uint16_t record_flags(const CallSpec& cs, int i, bool inplace) {
  const OperandSpec& o = cs.operands[i];
  bool offload = cs.phase == 0 && !o.output && !inplace && std::strcmp(o.role, "x") == 0;
  return static_cast<std::uint16_t>(spool::kRecOffloadKnown | (offload ? spool::kRecOffload : 0) |
                                    (inplace ? spool::kRecInPlace : 0));
}

}  // namespace

bool describe(State& st, const OperandSpec& o, TensorDesc& d) {
  if (o.desc) {
    d = *o.desc;
    return d.nd > 0;
  }
  if (!o.legacy || !st.GetTensorNd) return false;
  int dims[spool::kMaxDims], strides[spool::kMaxDims], nd = 0;
  cudnnDataType_t dt{};
  if (st.GetTensorNd(o.legacy, spool::kMaxDims, &dt, &nd, dims, strides) != CUDNN_STATUS_SUCCESS) return false;
  if (nd <= 0 || nd > spool::kMaxDims) return false;
  d.cudnn_dtype = static_cast<int>(dt);
  d.nd = nd;
  for (int i = 0; i < nd; ++i) {
    d.dims[i] = dims[i];
    d.strides[i] = strides[i];
  }
  return true;
}

// Copies (or, in-situ, measures) operand i. Called with the context pushed. The item goes to
// `defer` when given (inputs, before the call), else straight to the writer (outputs).
void capture_operand(State& st, CallSpec& cs, CallState& s, int i, bool inplace, std::vector<Item>* defer) {
  const OperandSpec& o = cs.operands[i];
  StoragePlan plan = plan_storage(s.descs[i]);
  if (!plan.ok || !pointer_ok(st, s, o.ptr)) {
    st.n.skipped_unsafe++;
    s.flags |= spool::kTlUnsafe;
    return;
  }
  CtxRes* c = s.ctx;
  const bool insitu = st.cfg.mode == Mode::kInsitu;
  if (insitu && !insitu_ready(st, c)) return;
  std::size_t bytes = insitu ? 16 : static_cast<std::size_t>(plan.extent_bytes);
  if (!insitu) {
    std::int64_t stored = plan.elements * dtype_size(plan.dtype);
    std::int64_t before = st.budget_used.fetch_add(stored);
    if (before + stored > st.cfg.budget) {
      st.budget_used.fetch_sub(stored);
      st.n.dropped++;
      st.n.dropped_budget++;
      return;
    }
  }
  std::size_t off = 0;
  if (!reserve_slot(st, bytes, off)) {
    if (!insitu) st.budget_used.fetch_sub(plan.elements * dtype_size(plan.dtype));
    st.n.dropped++;
    st.n.dropped_ring++;
    return;
  }
  CUevent done = get_event(st, c);
  CUevent in = (insitu || !st.cfg.inline_copy) ? get_event(st, c) : nullptr;
  bool ok = done != nullptr && (in != nullptr || (!insitu && st.cfg.inline_copy));
  CUstream copy_stream = s.stream;
  if (ok && in) {
    ok = st.drv.EventRecord(in, s.stream) == CUDA_SUCCESS && st.drv.StreamWaitEvent(c->side, in, 0) == CUDA_SUCCESS;
    copy_stream = c->side;
  }
  if (ok && insitu) {
    CdmaZeroStatsParams p{};
    p.base = static_cast<const unsigned char*>(o.ptr);
    const int offd = 4 - plan.ndims;
    for (int k = 0; k < 4; ++k) {
      p.dims[k] = k < offd ? 1 : plan.dims[k - offd];
      p.strides[k] = k < offd ? 0 : plan.src_strides[k - offd];
    }
    p.elements = plan.elements;
    p.elem_bytes = dtype_size(plan.dtype);
    p.counters = reinterpret_cast<unsigned long long*>(c->counters);
    void* args[] = {&p};
    std::int64_t blocks = (plan.elements + CDMA_ZERO_STATS_BLOCK - 1) / CDMA_ZERO_STATS_BLOCK;
    unsigned grid = static_cast<unsigned>(std::min<std::int64_t>(std::max<std::int64_t>(blocks, 1), 1024));
    ok = st.drv.MemsetD8Async(c->counters, 0, 16, copy_stream) == CUDA_SUCCESS &&
         st.drv.LaunchKernel(c->stats_fn, grid, 1, 1, CDMA_ZERO_STATS_BLOCK, 1, 1, 0, copy_stream, args, nullptr) ==
             CUDA_SUCCESS &&
         st.drv.MemcpyDtoHAsync(st.ring_base + off, c->counters, 16, copy_stream) == CUDA_SUCCESS;
  } else if (ok) {
    ok = st.drv.MemcpyDtoHAsync(st.ring_base + off, reinterpret_cast<CUdeviceptr>(o.ptr), bytes, copy_stream) ==
         CUDA_SUCCESS;
  }
  if (ok) ok = st.drv.EventRecord(done, copy_stream) == CUDA_SUCCESS;
  return_event(c, in);  // the wait is enqueued; the event may be recorded again
  if (!ok) {
    return_event(c, done);
    release_slot(st, off);
    if (!insitu) st.budget_used.fetch_sub(plan.elements * dtype_size(plan.dtype));
    st.n.dropped++;
    return;
  }
  s.done[i] = copy_stream == s.stream ? nullptr : done;  // inline copies need no join
  s.joined[i] = false;
  s.flags |= spool::kTlDataCaptured;
  Item it;
  it.ring_off = off;
  it.ev = done;
  it.ctx = c;
  it.plan = plan;
  it.rflags = record_flags(cs, i, inplace);
  it.role = o.role;
  if (insitu) {
    it.kind = Item::kStats;
    auto& r = it.srec;
    spool::put_str(r.dtype, dtype_name(plan.dtype));
    r.elements = plan.elements;
  } else {
    it.kind = Item::kTensor;
    it.trec.dtype = static_cast<std::uint8_t>(plan.dtype);
    it.trec.layout = static_cast<std::uint8_t>(plan.layout);
    it.trec.ndims = static_cast<std::uint8_t>(plan.ndims);
    for (int k = 0; k < plan.ndims; ++k) it.trec.dims[k] = plan.dims[k];
    it.trec.data_bytes = static_cast<std::uint64_t>(plan.elements * dtype_size(plan.dtype));
  }
  name_item(cs, s, it, o.role);
  if (defer)
    defer->push_back(std::move(it));
  else
    enqueue(std::move(it));
}

// Iteration, layer and call of a tensor or stats record, from the call's current assignment.
void name_item(CallSpec& cs, CallState& s, Item& it, const char* role) {
  if (it.kind == Item::kStats)
    fill_names(cs, s, role, it.srec);
  else
    fill_names(cs, s, role, it.trec);
}

bool overlaps(const CallSpec& cs, const CallState& s, int i) {
  StoragePlan pi = plan_storage(s.descs[i]);
  auto a0 = reinterpret_cast<std::uintptr_t>(cs.operands[i].ptr);
  auto a1 = a0 + static_cast<std::uintptr_t>(pi.extent_bytes);
  for (int j = 0; j < cs.n; ++j) {
    if (!cs.operands[j].output || !cs.operands[j].ptr) continue;
    auto b0 = reinterpret_cast<std::uintptr_t>(cs.operands[j].ptr);
    std::uintptr_t b1 = b0 + 1;
    if (s.described[j]) {
      StoragePlan pj = plan_storage(s.descs[j]);
      if (pj.ok) b1 = b0 + static_cast<std::uintptr_t>(pj.extent_bytes);
    }
    if (a0 < b1 && b0 < a1) return true;
  }
  return false;
}

void join(State& st, CallState& s, int i) {
  if (s.done[i] && !s.joined[i]) st.drv.StreamWaitEvent(s.stream, s.done[i], 0);
  s.joined[i] = true;
}

}  // namespace cdma::capture::rt
