#include "trainer.hpp"

#include "fmnist.hpp"
#include "nets.hpp"

#include <cdma/formats/simd.hpp>
#include <cdma/formats/trace.hpp>
#include <cdma/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <thread>

namespace cdma::train {

namespace fs = std::filesystem;
namespace F = cdma::formats;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Backward timing. An identity autograd node is put on each layer's input (after recording it)
// and on its output. In backward, the output's node runs when the gradient reaches the layer
// (start) and the input's node once the layer has produced its input gradient (end); the CPU
// autograd engine runs one node at a time on the calling thread, in reverse creation order, so
// [start, end] covers exactly that layer's backward kernels.
std::vector<std::int64_t>* g_marks = nullptr;

struct Mark : public torch::autograd::Function<Mark> {
  // copy: return a copy instead of x itself, for inputs of in-place layers (autograd forbids
  // modifying in place an input that a custom function returned as-is).
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, std::int64_t slot, bool copy) {
    ctx->saved_data["slot"] = slot;
    return copy ? x.clone() : x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto slot = static_cast<std::size_t>(ctx->saved_data["slot"].toInt());
    if (g_marks && slot < g_marks->size()) (*g_marks)[slot] = now_ns();
    return {grad[0], torch::Tensor(), torch::Tensor()};
  }
};

// Records layer inputs and forward/backward times at captured iterations; a plain call otherwise.
class Recorder : public LayerObserver {
 public:
  Recorder(F::TraceWriter* w, std::size_t layers, std::int64_t cap_batch, bool record_in_place_inputs)
      : writer_(w), cap_batch_(cap_batch), record_in_place_(record_in_place_inputs), marks_(2 * layers, -1) {}

  void begin(std::int64_t iteration) {
    active_ = true;
    iteration_ = iteration;
    fwd_.clear();
    std::fill(marks_.begin(), marks_.end(), -1);
    nonzeros_ = elements_ = 0;
    first_call_ = next_call_;
    held_.clear();
    g_marks = &marks_;
  }

  torch::Tensor call(LayerDef& l, int id, const torch::Tensor& x) override {
    if (!active_) return l.module.forward(x);
    std::int64_t call_no = next_call_++;
    // What a memory-virtualizing framework offloads: every layer's input, except the input of an
    // in-place layer (the previous layer's output buffer, which this layer overwrites: the next
    // layer's input holds the result) and the network input (the data loader's batch, which the
    // hardware model never offloads, docs/spec/HWMODEL.md).
    // An input that is the same buffer as an earlier layer's (the two expands of a fire module, the
    // branches of an inception module, a residual shortcut) is offloaded once, at its first consumer;
    // later consumers' records are for study (offload = 0). Recorded inputs are held until the
    // iteration ends, so that no buffer is freed and reused under another layer's name.
    const bool shared = std::any_of(held_.begin(), held_.end(), [&](const torch::Tensor& h) {
      return h.data_ptr() == x.data_ptr() && h.sizes() == x.sizes();
    });
    const bool offload = !l.in_place && call_no != first_call_ && !shared;
    if (!l.in_place || record_in_place_) {
      record(l, id, x, call_no, offload);
      held_.push_back(x);
    }
    auto slot = static_cast<std::int64_t>(id) * 2;
    torch::Tensor in = x.requires_grad() ? Mark::apply(x, slot + 1, l.in_place) : x;
    std::int64_t t0 = now_ns();
    torch::Tensor y = l.module.forward(in);
    std::int64_t t1 = now_ns();
    fwd_.push_back({id, call_no, t0, t1, &l});
    return y.requires_grad() ? Mark::apply(y, slot, false) : y;
  }

  // After backward: writes the forward rows, then one backward row per layer in execution order.
  void finish() {
    if (!active_) return;
    active_ = false;
    g_marks = nullptr;
    held_.clear();
    for (const auto& f : fwd_) writer_->append_timeline(row(f, 0, f.call, f.t0, f.t1));
    std::vector<const Fwd*> bwd;
    for (const auto& f : fwd_)
      if (marks_[2 * f.id] >= 0 && marks_[2 * f.id + 1] >= marks_[2 * f.id]) bwd.push_back(&f);
    std::sort(bwd.begin(), bwd.end(),
              [&](const Fwd* a, const Fwd* b) { return marks_[2 * a->id] < marks_[2 * b->id]; });
    for (const Fwd* f : bwd)
      writer_->append_timeline(row(*f, 1, next_call_++, marks_[2 * f->id], marks_[2 * f->id + 1]));
  }

  void abandon() {
    held_.clear();
    active_ = false;
    g_marks = nullptr;
  }

  double density() const { return elements_ ? static_cast<double>(nonzeros_) / static_cast<double>(elements_) : -1; }

 private:
  struct Fwd {
    int id;
    std::int64_t call, t0, t1;
    const LayerDef* layer;
  };

  F::TimelineRow row(const Fwd& f, std::int8_t phase, std::int64_t call, std::int64_t t0, std::int64_t t1) const {
    F::TimelineRow r;
    r.iteration = iteration_;
    r.call = call;
    r.layer_index = f.id;
    r.phase = phase;
    r.op = f.layer->op;
    r.layer = f.layer->name;
    r.start_ns = t0;
    r.end_ns = t1;
    r.device_ns = -1;
    return r;
  }

  void record(const LayerDef& l, int id, const torch::Tensor& x, std::int64_t call_no, bool offload) {
    if (x.dim() != 4 && x.dim() != 2)
      throw TrainError("layer '" + l.name + "' has a " + std::to_string(x.dim()) +
                       "-D input; traces hold NCHW or NC tensors");
    std::int64_t n = std::min<std::int64_t>(cap_batch_, x.size(0));
    torch::Tensor xs = x.detach().slice(0, 0, n).to(torch::kFloat32).contiguous();
    F::TensorMeta m;
    m.iteration = iteration_;
    m.layer = l.name;
    m.layer_index = id;
    m.op = l.op;
    m.role = "x";
    m.phase = "forward";
    m.layout = x.dim() == 4 ? F::Layout::NCHW : F::Layout::NC;
    m.dtype = F::DType::f32;
    m.dims.assign(xs.sizes().begin(), xs.sizes().end());
    m.call = call_no;
    m.offload = offload;
    auto bytes = std::span<const std::byte>(static_cast<const std::byte*>(xs.data_ptr()),
                                            static_cast<std::size_t>(xs.numel()) * sizeof(float));
    writer_->append_tensor(m, bytes);
    if (offload) {  // the progress line's density is that of the offloaded tensors
      nonzeros_ += xs.count_nonzero().item<std::int64_t>();
      elements_ += xs.numel();
    }
    ++tensors_;
    // Test hook: simulate a crash (SIGKILL) after N tensors, to check that the trace stays readable.
    if (kill_after_ > 0 && tensors_ == kill_after_) std::raise(SIGKILL);
  }

  F::TraceWriter* writer_;
  std::int64_t cap_batch_;
  bool record_in_place_;
  std::int64_t first_call_ = 0;      // call number of the iteration's first layer call (network input)
  std::vector<torch::Tensor> held_;  // inputs recorded in this iteration
  std::vector<std::int64_t> marks_;  // [2*id] backward start, [2*id+1] backward end
  std::vector<Fwd> fwd_;
  bool active_ = false;
  std::int64_t iteration_ = -1;
  std::int64_t next_call_ = 0;
  std::int64_t nonzeros_ = 0, elements_ = 0, tensors_ = 0;
  std::int64_t kill_after_ = [] {
    const char* e = std::getenv("CDMA_TRAIN_KILL_AFTER_TENSORS");
    return e ? std::atoll(e) : 0LL;
  }();
};

// Fashion-MNIST mean and standard deviation of pixel/255 over the training set.
constexpr double kMean = 0.2860, kStd = 0.3530;

torch::Tensor make_images(const Split& s, const std::vector<std::int64_t>& idx, std::size_t from, std::size_t n,
                          int size) {
  const std::int64_t px = s.rows * s.cols;
  auto u8 = torch::empty({static_cast<std::int64_t>(n), 1, s.rows, s.cols}, torch::kUInt8);
  auto* dst = u8.data_ptr<std::uint8_t>();
  for (std::size_t i = 0; i < n; ++i)
    std::copy_n(s.pixels.data() + idx[from + i] * px, px, dst + static_cast<std::int64_t>(i) * px);
  auto x = u8.to(torch::kFloat32).div_(255.0).sub_(kMean).div_(kStd);
  if (size != s.rows || size != s.cols)
    x = torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                  .size(std::vector<std::int64_t>{size, size})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(false));
  return x;
}

torch::Tensor make_labels(const Split& s, const std::vector<std::int64_t>& idx, std::size_t from, std::size_t n) {
  auto y = torch::empty({static_cast<std::int64_t>(n)}, torch::kInt64);
  auto* p = y.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < n; ++i) p[i] = s.labels[static_cast<std::size_t>(idx[from + i])];
  return y;
}

// Fisher-Yates with our own draws, so the order depends only on the seed (not on the library).
void shuffle(std::vector<std::int64_t>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

double evaluate(Net& net, const Split& test, int size) {
  torch::NoGradGuard ng;
  net.eval();
  std::vector<std::int64_t> idx(static_cast<std::size_t>(test.count));
  std::iota(idx.begin(), idx.end(), 0);
  std::int64_t correct = 0;
  const std::size_t chunk = 500;
  for (std::size_t from = 0; from < idx.size(); from += chunk) {
    std::size_t n = std::min(chunk, idx.size() - from);
    auto out = net.forward(make_images(test, idx, from, n, size));
    correct += out.argmax(1).eq(make_labels(test, idx, from, n)).sum().item<std::int64_t>();
  }
  net.train();
  return static_cast<double>(correct) / static_cast<double>(test.count);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Options& o, Net& net, double lr) {
  if (o.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(net.parameters(),
                                                torch::optim::AdamOptions(lr).weight_decay(o.weight_decay));
  return std::make_unique<torch::optim::SGD>(
      net.parameters(), torch::optim::SGDOptions(lr).momentum(o.momentum).weight_decay(o.weight_decay));
}

std::string fmt_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string framework_version() {
#ifdef CDMA_TORCH_PACKAGE_VERSION
  return std::string("libtorch ") + TORCH_VERSION + " (headers; package libtorch-dev " + CDMA_TORCH_PACKAGE_VERSION +
         ")";
#else
  return std::string("libtorch ") + TORCH_VERSION;
#endif
}

std::vector<NetListing> list_nets() {
  std::vector<NetListing> out;
  for (const auto& i : net_catalog()) {
    auto net = make_net(i.name);
    NetListing l{i.name, i.summary, i.input_size, i.batch, i.iterations, i.lr, 0, {}};
    for (const auto& p : net->parameters()) l.parameters += p.numel();
    for (const auto& d : net->layers()) l.layers.emplace_back(d.name, d.op);
    out.push_back(std::move(l));
  }
  return out;
}

RunResult run_training(const Options& o, const ProgressFn& progress, const std::atomic<bool>* stop) {
  validate(o);
  const NetInfo& info = net_info(o.net);
  RunResult r;
  r.net = o.net;
  r.batch = o.batch ? o.batch : info.batch;
  r.lr = o.lr > 0 ? o.lr : info.lr;
  r.input_size = info.input_size;
  r.threads = o.threads ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (o.capture_batch > r.batch)
    throw UsageError("cdma train: --capture-batch " + std::to_string(o.capture_batch) + " is larger than --batch " +
                     std::to_string(r.batch));

  // Input first, so that a missing dataset leaves no output file behind.
  Split train = load_split(o.data_dir, "train", o.train_limit);
  Split test = load_split(o.data_dir, "t10k", o.test_limit);
  r.train_images = train.count;
  r.test_images = test.count;
  if (train.count < r.batch)
    throw UsageError("cdma train: --batch " + std::to_string(r.batch) + " is larger than the " +
                     std::to_string(train.count) + " training images");
  const std::int64_t per_epoch = train.count / r.batch;
  r.planned_iterations = o.iterations > 0 ? o.iterations
                         : o.epochs > 0
                             ? std::max<std::int64_t>(1, std::llround(o.epochs * static_cast<double>(per_epoch)))
                             : info.iterations;
  const auto schedule = capture_schedule(o, r.planned_iterations);

  torch::set_num_threads(r.threads);
  torch::manual_seed(o.seed);
  auto net = make_net(o.net);
  net->init_weights();
  net->train();
  auto opt = make_optimizer(o, *net, r.lr);

  std::optional<F::TraceWriter> writer;
  if (!schedule.empty()) {
    r.trace = o.output.empty() ? o.net + "-fmnist.h5" : o.output;
    F::TraceAttrs a;
    a.producer = std::string("cdma-train ") + cdma::kVersion;
    a.source = "torch-cpu";
    a.model = o.net;
    a.device = cdma::formats::cpu_model_name();
    a.framework = framework_version();
    if (!o.command.empty()) a.command = o.command;
    F::WriterOptions wo;
    wo.overwrite = o.force;
    wo.deflate_level = o.deflate;
    wo.flush_every = 1;
    writer.emplace(r.trace, a, wo);
    writer->set_attribute("dataset", "fashion-mnist");
    writer->set_attribute("status", "running");
    writer->set_attribute("seed", std::to_string(o.seed));
    writer->set_attribute("threads", std::to_string(r.threads));
    writer->set_attribute("batch_size", std::to_string(r.batch));
    writer->set_attribute("capture_batch", std::to_string(o.capture_batch ? o.capture_batch : r.batch));
    writer->set_attribute("iterations", std::to_string(r.planned_iterations));
    writer->set_attribute("input_size", std::to_string(r.input_size));
    writer->set_attribute("optimizer", o.optimizer);
    writer->set_attribute("learning_rate", fmt_double(r.lr));
    writer->set_attribute("relu", o.record_relu_inputs
                                      ? "in place; inputs recorded with offload = 0 (--record-relu-inputs)"
                                      : "in place; inputs not recorded (overwritten, never offloaded)");
    writer->set_attribute("timeline_method",
                          "forward: host clock around each layer call; backward: identity autograd nodes on each "
                          "layer's input and output (CPU autograd runs nodes one at a time)");
  }
  // A run that throws leaves status = "failed" (the writer's destructor then closes the file).
  struct FailMark {
    std::optional<F::TraceWriter>& w;
    ~FailMark() {
      if (w && std::uncaught_exceptions() > 0) {
        try {
          w->set_attribute("status", "failed");
        } catch (...) {
        }
      }
    }
  } fail_mark{writer};
  Recorder rec(writer ? &*writer : nullptr, net->layers().size(), o.capture_batch ? o.capture_batch : r.batch,
               o.record_relu_inputs);
  net->set_observer(writer ? &rec : nullptr);

  std::mt19937_64 rng(o.seed);
  std::vector<std::int64_t> order(static_cast<std::size_t>(train.count));
  std::iota(order.begin(), order.end(), 0);
  std::size_t cursor = order.size();  // reshuffle at the first iteration
  std::size_t next_capture = 0;
  const auto t_start = std::chrono::steady_clock::now();

  for (std::int64_t it = 0; it < r.planned_iterations; ++it) {
    if (stop && stop->load()) {
      r.interrupted = true;
      break;
    }
    if (cursor + static_cast<std::size_t>(r.batch) > order.size()) {
      shuffle(order, rng);
      cursor = 0;
    }
    auto x = make_images(train, order, cursor, static_cast<std::size_t>(r.batch), r.input_size);
    auto y = make_labels(train, order, cursor, static_cast<std::size_t>(r.batch));
    cursor += static_cast<std::size_t>(r.batch);

    bool capture = next_capture < schedule.size() && schedule[next_capture] == it;
    if (capture) {
      ++next_capture;
      rec.begin(it);
      x.requires_grad_(true);  // so that the first layer's backward is timed too
    }
    torch::Tensor loss, out;
    try {
      out = net->forward(x);
      loss = torch::nll_loss(out, y);
      opt->zero_grad();
      loss.backward();
    } catch (...) {
      rec.abandon();
      throw;
    }
    opt->step();

    IterationStats s;
    s.iteration = it;
    s.total = r.planned_iterations;
    s.loss = loss.item<double>();
    s.accuracy = out.detach().argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
    if (capture) {
      rec.finish();
      s.captured = true;
      s.density = rec.density();
      r.captured_iterations.push_back(it);
    }
    s.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    r.curve.push_back(s);
    r.iterations = it + 1;
    if (!std::isfinite(s.loss))
      throw TrainError("training diverged at iteration " + std::to_string(it) + " (loss " + fmt_double(s.loss) +
                       "); try a smaller --lr");
    if (progress) progress(s);
  }
  r.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  net->set_observer(nullptr);

  if (!r.interrupted) {
    auto t0 = std::chrono::steady_clock::now();
    r.test_accuracy = evaluate(*net, test, r.input_size);
    r.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (writer) {
    r.captured_tensors = writer->tensor_count();
    writer->set_attribute("status", r.interrupted ? "interrupted" : "finished");
    writer->set_attribute("iterations_run", std::to_string(r.iterations));
    if (r.test_accuracy >= 0) {
      writer->set_attribute("test_accuracy", fmt_double(r.test_accuracy));
      writer->set_attribute("test_images", std::to_string(r.test_images));
    }
    if (!r.curve.empty()) writer->set_attribute("final_train_loss", fmt_double(r.curve.back().loss));
    writer->close();
    std::error_code ec;
    r.trace_bytes = static_cast<std::int64_t>(fs::file_size(r.trace, ec));
  }
  return r;
}

}  // namespace cdma::train
