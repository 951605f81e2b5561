// The spool writer thread: it waits for the copies of queued items, packs tensors into their
// stored layout and writes whole records (spool.hpp), so that a spool is always a valid prefix.
#include "runtime_state.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace cdma::capture {
namespace rt {

bool write_all(int fd, const void* p, std::size_t n) noexcept {
  const auto* c = static_cast<const unsigned char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

void write_record(State& st, std::uint16_t type, const void* a, std::size_t na, const void* b, std::size_t nb,
                  std::uint16_t flags) noexcept {
  if (st.write_failed.load()) return;
  spool::RecordHeader h{spool::kRecordMagic, type, flags, na + nb};
  // Header and fixed part in one write; bulk data in a second (readers drop a truncated record).
  unsigned char buf[sizeof(h) + 512];
  bool ok;
  if (na <= 512) {
    std::memcpy(buf, &h, sizeof(h));
    std::memcpy(buf + sizeof(h), a, na);
    ok = write_all(st.fd, buf, sizeof(h) + na);
  } else {
    ok = write_all(st.fd, &h, sizeof(h)) && write_all(st.fd, a, na);
  }
  if (ok && nb) ok = write_all(st.fd, b, nb);
  if (!ok) {
    st.write_failed = true;
    warn_once("write", "cannot write the spool %s: %s; capture stops", st.spool_path.c_str(), std::strerror(errno));
    st.active = false;
  }
}

spool::CountersRecord counters_record(State& st) {
  spool::CountersRecord c{};
  c.calls = st.n.calls;
  c.tensors = st.n.tensors;
  c.stats = st.n.stats;
  c.bytes = st.n.bytes;
  c.dropped_tensors = st.n.dropped;
  c.dropped_budget = st.n.dropped_budget;
  c.dropped_ring = st.n.dropped_ring;
  c.skipped_graph = st.n.skipped_graph;
  c.skipped_unsafe = st.n.skipped_unsafe;
  c.cupti_dropped = st.n.cupti_dropped;
  c.skipped_failed = st.n.skipped_failed;
  {
    std::lock_guard lk(st.iter_mu);
    c.iterations = st.tracker.iterations_seen();
  }
  return c;
}

namespace {

void process(State& st, Item& it, std::vector<unsigned char>& scratch) {
  if (it.kind == Item::kRaw) {
    write_record(st, it.type, it.raw.data(), it.raw.size());
    return;
  }
  CUresult r = st.drv.EventSynchronize(it.ev);  // also for a discarded item: its slot is in use until then
  const unsigned char* src = st.ring_base + it.ring_off;
  if (it.discard) {
    // counted by call_end
  } else if (r != CUDA_SUCCESS) {
    st.n.dropped++;
  } else if (it.kind == Item::kTensor) {
    const unsigned char* data = src;
    std::size_t bytes = it.trec.data_bytes;
    if (!it.plan.packed) {
      scratch.resize(bytes);
      pack_tensor(it.plan, src, scratch.data());
      data = scratch.data();
    }
    write_record(st, static_cast<std::uint16_t>(spool::RecordType::kTensor), &it.trec, sizeof(it.trec), data, bytes,
                 it.rflags);
    st.n.tensors++;
    st.n.bytes += static_cast<std::int64_t>(bytes);
  } else {
    unsigned long long c[2];
    std::memcpy(c, src, sizeof(c));
    it.srec.nonzeros = static_cast<std::int64_t>(c[0]);
    it.srec.zero_runs = static_cast<std::int64_t>(c[1]);
    write_record(st, static_cast<std::uint16_t>(spool::RecordType::kStats), &it.srec, sizeof(it.srec), nullptr, 0,
                 it.rflags);
    st.n.stats++;
  }
  return_event(it.ctx, it.ev);
  release_slot(st, it.ring_off);
}

}  // namespace

void writer_main() {
  State& st = S();
  st.writer_tid = pthread_self();
  if (st.drv.ok && st.drv.ThreadExchangeStreamCaptureMode) {
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    st.drv.ThreadExchangeStreamCaptureMode(&m);
  }
  std::vector<unsigned char> scratch;
  std::int64_t last_counters = mono_ns();
  for (;;) {
    std::deque<Item> batch;
    bool stopping;
    {
      std::unique_lock lk(st.qmu);
      st.qcv.wait_for(lk, std::chrono::milliseconds(50),
                      [&] { return st.stop || !st.q.empty() || g_signal_flush.load(); });
      batch.swap(st.q);
      stopping = st.stop;
    }
    for (auto& it : batch) process(st, it, scratch);
    std::int64_t now = mono_ns();
    if (!batch.empty() && now - last_counters > 200000000) {
      auto c = counters_record(st);
      write_record(st, static_cast<std::uint16_t>(spool::RecordType::kCounters), &c, sizeof(c));
      last_counters = now;
    }
    if (g_signal_flush.load() == 1) {
      std::lock_guard lk(st.qmu);
      for (auto& it : st.q) process(st, it, scratch);
      st.q.clear();
      auto c = counters_record(st);
      write_record(st, static_cast<std::uint16_t>(spool::RecordType::kCounters), &c, sizeof(c));
      g_signal_done = 1;
      g_signal_flush = 2;
    }
    if (stopping) {
      std::lock_guard lk(st.qmu);
      if (st.q.empty()) break;
    }
  }
}

void enqueue(Item&& it) {
  State& st = S();
  {
    std::lock_guard lk(st.qmu);
    st.q.push_back(std::move(it));
  }
  st.qcv.notify_one();
}

void enqueue_attr(const std::string& k, const std::string& v) {
  Item it;
  it.type = static_cast<std::uint16_t>(spool::RecordType::kAttr);
  spool::AttrRecord a{static_cast<std::uint32_t>(k.size()), static_cast<std::uint32_t>(v.size())};
  it.raw.resize(sizeof(a) + k.size() + v.size());
  std::memcpy(it.raw.data(), &a, sizeof(a));
  std::memcpy(it.raw.data() + sizeof(a), k.data(), k.size());
  std::memcpy(it.raw.data() + sizeof(a) + k.size(), v.data(), v.size());
  enqueue(std::move(it));
}

}  // namespace rt

using namespace rt;

void enqueue_raw_record(std::uint16_t type, const void* payload, std::size_t bytes) noexcept {
  State& st = S();
  if (st.fd < 0 || st.stop) return;
  try {
    Item it;
    it.type = type;
    it.raw.assign(static_cast<const unsigned char*>(payload), static_cast<const unsigned char*>(payload) + bytes);
    enqueue(std::move(it));
  } catch (...) {
  }
}

}  // namespace cdma::capture
