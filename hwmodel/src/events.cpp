// Event-by-event reference replay: the two CUDA streams of vDNN as queues of operations with
// dependencies, run by a discrete-event loop. It shares only item_times() (per-transfer
// durations) and the Network with the closed form; the offload plan, the prefetch choice and the
// timing come from its own code, so that the two can be tested against each other.
#include <cdma/hwmodel/replay.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <queue>
#include <set>

namespace cdma::hwmodel {

namespace {

enum Stream { kCompute = 0, kMemory = 1 };

struct Op {
  Stream stream;
  Ps duration;
  std::vector<int> deps;
  Event ev;  // stream, kind, layer, tensor, bytes (times filled by the loop)
};

class Program {
 public:
  // Adds an op that runs after `deps` and after everything earlier on its stream.
  int add(Stream s, Ps duration, std::vector<int> deps, const char* kind, int layer, int tensor, std::int64_t bytes) {
    Op op{s, duration, std::move(deps), {}};
    op.ev.stream = s == kCompute ? "compute" : "memory";
    op.ev.kind = kind;
    op.ev.layer = layer;
    op.ev.tensor = tensor;
    op.ev.bytes = bytes;
    ops_.push_back(std::move(op));
    return static_cast<int>(ops_.size()) - 1;
  }
  std::vector<Op>& ops() { return ops_; }

  // Runs every op: an op starts when it heads its stream's queue and all its deps have ended.
  void run() {
    const int n = static_cast<int>(ops_.size());
    std::vector<int> waiting(n, 0);
    std::vector<std::vector<int>> dependents(n);
    std::deque<int> queue[2];
    for (int k = 0; k < n; ++k) {
      waiting[k] = static_cast<int>(ops_[k].deps.size());
      for (int d : ops_[k].deps) dependents[d].push_back(k);
      queue[ops_[k].stream].push_back(k);
    }
    bool busy[2] = {false, false};
    using Done = std::pair<Ps, int>;  // (end time, op), earliest first, then program order
    std::priority_queue<Done, std::vector<Done>, std::greater<>> pending;
    Ps now = 0;
    auto try_start = [&](int s) {
      if (busy[s] || queue[s].empty()) return;
      int k = queue[s].front();
      if (waiting[k] > 0) return;
      queue[s].pop_front();
      busy[s] = true;
      ops_[k].ev.start_ps = now;
      ops_[k].ev.end_ps = now + ops_[k].duration;
      pending.push({ops_[k].ev.end_ps, k});
    };
    try_start(kCompute);
    try_start(kMemory);
    while (!pending.empty()) {
      auto [t, k] = pending.top();
      pending.pop();
      now = t;
      busy[ops_[k].stream] = false;
      for (int d : dependents[k]) --waiting[d];
      try_start(kCompute);
      try_start(kMemory);
    }
  }

 private:
  std::vector<Op> ops_;
};

}  // namespace

EventReplay replay_events(const Network& net, Policy policy, const Engine* engine, const LinkParams& link) {
  const int n = static_cast<int>(net.layers.size());
  const bool offloading = engine != nullptr && policy != Policy::none;

  // Which tensors go to the host: consumers of each tensor, in forward order.
  std::map<int, std::vector<int>> consumers;
  for (int i = 0; i < n; ++i)
    if (net.layers[i].x_tensor >= 0) consumers[net.layers[i].x_tensor].push_back(i);
  std::set<int> offloaded;
  if (offloading) {
    for (const auto& [tensor, users] : consumers) {
      if (tensor == net.input_tensor) continue;
      if (net.layers[users.front()].x_bytes <= 0) continue;
      bool conv = std::any_of(users.begin(), users.end(), [&](int i) { return net.layers[i].op == "conv"; });
      if (policy == Policy::vdnn_all || conv) offloaded.insert(tensor);
    }
  }
  std::map<int, ItemTimes> times;
  for (int tensor : offloaded) {
    const Layer& first = net.layers[consumers[tensor].front()];
    OffloadItem item;
    item.tensor = tensor;
    item.bytes = first.x_bytes;
    item.ratio = &first.ratio;
    times[tensor] = item_times(item, *engine, link);
  }
  auto first_user = [&](int i) {
    int t = net.layers[i].x_tensor;
    return t >= 0 && offloaded.count(t) && consumers[t].front() == i;
  };
  auto last_user = [&](int i) {
    int t = net.layers[i].x_tensor;
    return t >= 0 && offloaded.count(t) && consumers[t].back() == i;
  };

  Program prog;
  std::vector<int> barrier;  // ops the next layer step waits for (synchronisation of both streams)
  auto close_step = [&](std::initializer_list<int> ops) {
    barrier.clear();
    for (int k : ops)
      if (k >= 0) barrier.push_back(k);
  };

  // Forward.
  for (int i = 0; i < n; ++i) {
    const Layer& l = net.layers[i];
    int comp = -1, mem = -1, squeeze = -1;
    if (first_user(i)) {
      const ItemTimes& t = times[l.x_tensor];
      if (t.compress_ps > 0) squeeze = prog.add(kCompute, t.compress_ps, barrier, "compress", i, l.x_tensor, l.x_bytes);
      std::vector<int> deps = barrier;
      if (squeeze >= 0) deps = {squeeze};
      mem = prog.add(kMemory, t.offload_ps, deps, "offload", i, l.x_tensor, t.link_bytes);
    }
    comp = prog.add(kCompute, l.fwd_ps, squeeze >= 0 ? std::vector<int>{squeeze} : barrier, "forward", i, -1, 0);
    close_step({comp, mem});
  }
  const std::vector<int> forward_end = barrier;

  // Backward. State of each offloaded tensor: on the host until a fetch or prefetch brings it back.
  std::map<int, int> back_by;  // tensor -> op that brings it back
  for (int i = n - 1; i >= 0; --i) {
    const Layer& l = net.layers[i];
    int fetch = -1, prefetch = -1, unpack = -1;
    std::vector<int> deps = barrier;
    if (last_user(i)) {
      const ItemTimes& t = times[l.x_tensor];
      if (!back_by.count(l.x_tensor)) {
        fetch = prog.add(kMemory, t.prefetch_ps, barrier, "fetch", i, l.x_tensor, t.link_bytes);
        back_by[l.x_tensor] = fetch;
        deps = {fetch};
      }
      if (t.decompress_ps > 0) {
        unpack = prog.add(kCompute, t.decompress_ps, deps, "decompress", i, l.x_tensor, l.x_bytes);
        deps = {unpack};
      }
    }
    // vDNN's choice: walk back to the nearest layer whose tensor still sits on the host; give up at a conv.
    for (int m = i - 1; m >= 0; --m) {
      int t = net.layers[m].x_tensor;
      if (last_user(m) && !back_by.count(t)) {
        std::vector<int> pdeps = fetch >= 0 ? std::vector<int>{fetch} : barrier;
        prefetch = prog.add(kMemory, times[t].prefetch_ps, pdeps, "prefetch", i, t, times[t].link_bytes);
        back_by[t] = prefetch;
        break;
      }
      if (net.layers[m].op == "conv") break;
    }
    int comp = prog.add(kCompute, l.bwd_ps, deps, "backward", i, -1, 0);
    close_step({comp, prefetch, fetch});
  }

  prog.run();
  EventReplay out;
  for (const auto& op : prog.ops()) out.total_ps = std::max(out.total_ps, op.ev.end_ps);
  for (int k : forward_end) out.forward_ps = std::max(out.forward_ps, prog.ops()[k].ev.end_ps);
  for (auto& op : prog.ops()) out.events.push_back(op.ev);
  std::stable_sort(out.events.begin(), out.events.end(),
                   [](const Event& a, const Event& b) { return a.start_ps < b.start_ps; });
  return out;
}

}  // namespace cdma::hwmodel
