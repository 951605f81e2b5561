// cdma-train end to end: tiny real training runs on Fashion-MNIST through the executable, with the
// written traces checked against the network definitions (shapes, values through parameter-free
// layers, layer order, timeline), determinism, bad input, and a crash mid-capture.
#include "nets.hpp"
#include "test_util.hpp"

#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
namespace F = cdma::formats;
using cdma::test::quote;
using cdma::test::run_command;
using cdma::test::TempDir;

namespace {

const std::string kExe = CDMA_TRAIN_EXE;
const std::string kData = CDMA_FMNIST_DIR;

bool have_data() { return fs::exists(kData + "/train-images-idx3-ubyte.gz"); }

// A few iterations on a few hundred images: seconds, but real data and real updates.
std::string tiny(const std::string& net, const fs::path& out, const std::string& extra = "",
                 const std::string& schedule = "-i 3 --capture-at 0,2") {
  return quote(kExe) + " --net " + net + " -b 8 " + schedule + " --capture-batch 2 --train-limit 256" +
         " --test-limit 64 --threads 1 -o " + quote(out.string()) + " " + extra;
}

#define REQUIRE_DATA() \
  if (!have_data()) GTEST_SKIP() << "Fashion-MNIST not installed at " << kData

torch::Tensor to_tensor(const F::TraceReader& rd, const F::TensorMeta& m) {
  auto bytes = rd.read(m);
  auto t = torch::empty(m.dims, torch::kFloat32);
  EXPECT_EQ(bytes.size(), static_cast<std::size_t>(t.numel()) * 4);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

std::vector<std::string> loss_column(const fs::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::vector<std::string> out;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string it, loss;
    std::getline(ss, it, ',');
    std::getline(ss, loss, ',');
    out.push_back(loss);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Every captured tensor matches the layer it names.

class TrainShapes : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainShapes, CapturedTensorsMatchTheirLayers) {
  REQUIRE_DATA();
  const std::string name = GetParam();
  TempDir d;
  auto out = d / "t.h5";
  // Every layer's input, ReLU inputs included (recorded with offload = 0), so that each layer's
  // output can be checked against its consumer's input.
  auto r = run_command(tiny(name, out, "--record-relu-inputs", "-i 2 --capture-first 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  F::TraceReader rd(out);
  EXPECT_TRUE(rd.attrs().complete);
  EXPECT_EQ(rd.attrs().source, "torch-cpu");
  EXPECT_EQ(rd.attrs().model.value_or(""), name);
  ASSERT_TRUE(rd.attrs().command.has_value());
  EXPECT_NE(rd.attrs().command->find("--net " + name), std::string::npos);

  auto net = cdma::train::make_net(name);
  net->eval();
  torch::NoGradGuard ng;
  const auto& layers = net->layers();
  auto index_of = [&](const std::string& l) {
    for (std::size_t i = 0; i < layers.size(); ++i)
      if (layers[i].name == l) return static_cast<int>(i);
    return -1;
  };

  std::map<std::pair<std::int64_t, std::string>, torch::Tensor> xs;
  std::map<std::int64_t, int> last_index;
  std::vector<const F::TensorMeta*> shared;
  for (const auto& m : rd.tensors()) {
    SCOPED_TRACE(m.name + " " + m.layer);
    int idx = index_of(m.layer);
    ASSERT_GE(idx, 0) << "unknown layer";
    EXPECT_EQ(m.layer_index, idx);
    EXPECT_EQ(m.op, layers[static_cast<std::size_t>(idx)].op);
    EXPECT_EQ(m.role, "x");
    EXPECT_EQ(m.phase, "forward");
    EXPECT_EQ(m.dtype, F::DType::f32);
    ASSERT_TRUE(m.dims.size() == 4 || m.dims.size() == 2);
    EXPECT_EQ(m.layout, m.dims.size() == 4 ? F::Layout::NCHW : F::Layout::NC);
    EXPECT_EQ(m.dims[0], 2) << "--capture-batch 2";
    // Offloaded: every layer's input but an in-place ReLU's, the network input, and an input that is
    // the same buffer as an earlier layer's (checked below).
    ASSERT_TRUE(m.offload.has_value());
    if (m.op == "relu" || idx == 0) {
      EXPECT_FALSE(*m.offload);
    }
    if (m.op != "relu" && idx != 0 && !*m.offload) shared.push_back(&m);
    // Capture order is forward order.
    auto it = last_index.find(m.iteration);
    if (it != last_index.end()) {
      EXPECT_GT(idx, it->second);
    }
    last_index[m.iteration] = idx;
    EXPECT_TRUE(xs.emplace(std::make_pair(m.iteration, m.layer), to_tensor(rd, m)).second) << "captured twice";
  }
  ASSERT_EQ(last_index.size(), 2u);  // iterations 0 and 1
  // A layer input left out of the offload set (not a ReLU's, not the network input) holds the same
  // values as an offloaded input of an earlier layer of that iteration: it is that buffer, read again.
  for (const auto* m : shared) {
    const auto& x = xs.at({m->iteration, m->layer});
    bool same = false;
    for (const auto& o : rd.tensors())
      if (o.iteration == m->iteration && o.layer_index < m->layer_index && o.offloaded() && o.dims == m->dims)
        same = same || torch::equal(xs.at({o.iteration, o.layer}), x);
    EXPECT_TRUE(same) << m->layer << " is not offloaded but is no earlier layer's buffer";
  }
  const std::size_t want_shared = name == "squeezenet" ? 6 : name == "googlenet" ? 9 : name == "resnet" ? 2 : 0;
  EXPECT_EQ(shared.size(), 2 * want_shared) << "inputs shared with an earlier layer, over 2 iterations";
  for (auto [iter, unused] : last_index)
    for (const auto& l : layers) EXPECT_TRUE(xs.count({iter, l.name})) << l.name << " missing at " << iter;

  // The network input: [2, 1, S, S].
  auto first = xs.at({0, layers.front().name});
  EXPECT_EQ(first.sizes(), (std::vector<std::int64_t>{2, 1, net->input_size(), net->input_size()}));

  for (auto& [key, x] : xs) {
    SCOPED_TRACE(key.second);
    auto* l = net->find(key.second);
    if (auto* c = l->module.ptr()->as<torch::nn::Conv2d>()) {
      ASSERT_EQ(x.dim(), 4);
      EXPECT_EQ(x.size(1), c->options.in_channels());
    } else if (auto* fc = l->module.ptr()->as<torch::nn::Linear>()) {
      ASSERT_EQ(x.dim(), 2);
      EXPECT_EQ(x.size(1), fc->options.in_features());
    } else if (auto* b = l->module.ptr()->as<torch::nn::BatchNorm2d>()) {
      EXPECT_EQ(x.size(1), b->options.num_features());
    }
    torch::Tensor y;
    ASSERT_NO_THROW(y = l->module.forward(x)) << "layer rejects its captured input " << x.sizes();
    if (l->next.empty()) continue;
    // The sole consumer's captured input has this layer's output shape; through a
    // parameter-free layer the values must agree too.
    auto* n = net->find(l->next);
    if (n->flatten_input) y = y.flatten(1);
    const auto& nx = xs.at({key.first, l->next});
    ASSERT_EQ(y.sizes(), nx.sizes()) << "-> " << l->next;
    if (l->op == "relu" || l->op == "pool" || l->op == "lrn") {
      EXPECT_TRUE(torch::allclose(y, nx, 1e-5, 1e-6)) << l->op << " output differs from " << l->next << "'s input";
    }
  }

  // Timeline: one forward and one backward row per layer per captured iteration, backward in
  // reverse order (last layer first, first layer last).
  ASSERT_TRUE(rd.has_timeline());
  auto tl = rd.timeline();
  for (auto [iter, unused] : last_index) {
    std::vector<F::TimelineRow> fw, bw;
    for (const auto& row : tl)
      if (row.iteration == iter) (row.phase == 0 ? fw : bw).push_back(row);
    ASSERT_EQ(fw.size(), layers.size());
    ASSERT_EQ(bw.size(), layers.size());
    for (const auto& row : tl) {
      EXPECT_GE(row.end_ns, row.start_ns);
      EXPECT_EQ(row.layer, layers[static_cast<std::size_t>(row.layer_index)].name);
    }
    EXPECT_EQ(bw.front().layer_index, static_cast<int>(layers.size()) - 1);
    EXPECT_EQ(bw.back().layer_index, 0);
  }
}

// By default the input of an in-place ReLU (the dense conv/FC output it overwrites) is not recorded:
// the trace holds exactly what a memory-virtualizing framework offloads, plus the network input
// (offload = 0). Each ReLU still has its timeline rows.
TEST(TrainRun, DefaultTraceHoldsTheOffloadSet) {
  REQUIRE_DATA();
  for (const std::string name : {"vgg", "resnet"}) {
    SCOPED_TRACE(name);
    TempDir d;
    auto out = d / "t.h5";
    auto r = run_command(tiny(name, out, "", "-i 1 --capture-first 1"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    F::TraceReader rd(out);
    auto net = cdma::train::make_net(name);
    std::size_t relus = 0;
    for (const auto& l : net->layers()) relus += l.op == "relu";
    ASSERT_GT(relus, 0u);
    EXPECT_EQ(rd.tensors().size(), net->layers().size() - relus);
    std::int64_t offloaded = 0;
    for (const auto& m : rd.tensors()) {
      EXPECT_NE(m.op, "relu") << m.layer;
      ASSERT_TRUE(m.offload.has_value());
      if (m.layer_index == 0) {
        EXPECT_FALSE(*m.offload) << "the network input";
      }
      offloaded += m.offloaded();
    }
    // resnet: the two projection shortcuts read their block's input buffer, offloaded at conv1.
    EXPECT_EQ(offloaded, static_cast<std::int64_t>(rd.tensors().size()) - 1 - (name == "resnet" ? 2 : 0));
    std::size_t relu_rows = 0;
    for (const auto& row : rd.timeline()) relu_rows += row.op == "relu";
    EXPECT_EQ(relu_rows, 2 * relus) << "one forward and one backward row per ReLU";
    EXPECT_EQ(rd.root_attribute("relu").value_or("").rfind("in place", 0), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllNets, TrainShapes,
                         ::testing::Values("alexnet", "overfeat", "nin", "vgg", "squeezenet", "googlenet", "resnet"));

// ---------------------------------------------------------------------------------------------
// Determinism

TEST(TrainRun, SameSeedGivesIdenticalBytesAndLossCurve) {
  REQUIRE_DATA();
  TempDir d;
  for (const char* n : {"a", "b", "c"}) {
    std::string seed = std::string(n) == "c" ? "8" : "7";
    auto r = run_command(tiny("squeezenet", d / (std::string(n) + ".h5"),
                              "--seed " + seed + " --metrics " + quote((d / (std::string(n) + ".csv")).string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  F::TraceReader a(d / "a.h5"), b(d / "b.h5"), c(d / "c.h5");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  ASSERT_GT(a.tensors().size(), 0u);
  bool differs_with_other_seed = false;
  for (std::size_t i = 0; i < a.tensors().size(); ++i) {
    const auto &ma = a.tensors()[i], &mb = b.tensors()[i], &mc = c.tensors()[i];
    EXPECT_EQ(ma.layer, mb.layer);
    EXPECT_EQ(ma.iteration, mb.iteration);
    EXPECT_EQ(ma.dims, mb.dims);
    EXPECT_TRUE(a.read(ma) == b.read(mb)) << "tensor " << ma.name << " (" << ma.layer << ") differs";
    if (a.read(ma) != c.read(mc)) differs_with_other_seed = true;
  }
  EXPECT_TRUE(differs_with_other_seed) << "--seed has no effect";
  auto la = loss_column(d / "a.csv"), lb = loss_column(d / "b.csv"), lc = loss_column(d / "c.csv");
  ASSERT_EQ(la.size(), 3u);
  EXPECT_EQ(la, lb);
  EXPECT_NE(la, lc);
}

// ---------------------------------------------------------------------------------------------
// Bad input and the command line

TEST(TrainCli, HelpAndListNets) {
  auto r = run_command(quote(kExe) + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--capture-every"), std::string::npos);
  EXPECT_NE(r.output.find("-j,-t,--jobs,--threads"), std::string::npos);
  r = run_command(quote(kExe) + " --list-nets");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* n : {"alexnet", "overfeat", "nin", "vgg", "squeezenet", "googlenet", "resnet"})
    EXPECT_NE(r.output.find(n), std::string::npos) << n;
}

TEST(TrainCli, UsageErrorsExitTwo) {
  TempDir d;
  auto out = d / "t.h5";
  auto r = run_command(tiny("lenet", out));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown network 'lenet'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("squeezenet"), std::string::npos) << r.output;

  r = run_command(tiny("vgg", out, "--capture-at 1,7"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--capture-at 7 is past the last iteration (2)"), std::string::npos) << r.output;

  r = run_command(tiny("vgg", out, "--epochs 1"));  // with -i
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_command(tiny("vgg", out, "--capture-batch 9"));  // more than -b 8
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--capture-batch"), std::string::npos) << r.output;
  r = run_command(tiny("vgg", out, "--deflate 12"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(TrainCli, BadInputExitsOneWithAClearMessage) {
  REQUIRE_DATA();
  TempDir d;
  auto out = d / "t.h5";
  auto r = run_command(tiny("vgg", out, "--data-dir " + quote((d / "no-data").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("dataset-fashion-mnist"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out)) << "no output without input";

  auto bad_out = d / "no" / "such" / "dir" / "t.h5";
  r = run_command(tiny("vgg", bad_out));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(bad_out.string()), std::string::npos) << r.output;

  std::ofstream(out) << "x";
  r = run_command(tiny("vgg", out));
  EXPECT_EQ(r.exit_code, 1) << "an existing file is not overwritten without --force\n" << r.output;
  r = run_command(tiny("vgg", out, "--force --json"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"test_accuracy\""), std::string::npos) << r.output;
  EXPECT_TRUE(F::TraceReader(out).attrs().complete);
}

// A trace path that is not UTF-8 (any bytes are a valid Linux path): the --json summary escapes it
// (formats::clean_text) instead of failing.
TEST(TrainCli, JsonOfAPathThatIsNotUtf8) {
  REQUIRE_DATA();
  TempDir d;
  auto out = d / "t\xff.h5";
  auto r = run_command(tiny("vgg", out, "--json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto at = r.output.find("\"trace\"");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string line = r.output.substr(at, r.output.find('\n', at) - at);  // "trace": "..."
  EXPECT_EQ(line.find('\xff'), std::string::npos) << "raw byte in the JSON: " << line;
  EXPECT_NE(line.find("\\\\xFF"), std::string::npos) << line;  // clean_text's \xFF, its backslash escaped
  EXPECT_TRUE(F::TraceReader(out).attrs().complete);
}

TEST(TrainCli, NoCaptureWritesNoTrace) {
  REQUIRE_DATA();
  TempDir d;
  auto r = run_command(tiny("vgg", d / "t.h5", "--no-capture"));  // --capture-at given: usage error
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_command(quote(kExe) + " --net vgg -b 8 -i 2 --train-limit 64 --test-limit 32 --no-capture -o " +
                  quote((d / "t.h5").string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("test accuracy"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "t.h5"));
}

TEST(TrainCli, CrashMidCaptureLeavesAReadableTrace) {
  REQUIRE_DATA();
  TempDir d;
  auto out = d / "t.h5";
  auto r = run_command("CDMA_TRAIN_KILL_AFTER_TENSORS=30 " + tiny("vgg", out));
  // -1: killed by a signal; 137: the shell running the command reports the SIGKILL as 128 + 9.
  EXPECT_TRUE(r.exit_code == -1 || r.exit_code == 137) << "expected SIGKILL, got " << r.exit_code << "\n" << r.output;
  F::TraceReader rd(out);
  EXPECT_FALSE(rd.attrs().complete);
  EXPECT_FALSE(rd.warnings().empty());
  ASSERT_GE(rd.tensors().size(), 29u);  // at most the tensor being written is lost
  for (const auto& m : rd.tensors()) EXPECT_EQ(rd.read(m).size(), static_cast<std::size_t>(m.bytes()));
}

TEST(TrainCli, FrontDoorRunsCdmaTrain) {
  // `cdma train` execs cdma-train from the same bin/ directory (cli/main.cpp).
  auto cdma = cdma::test::cdma_binary();
  if (!fs::exists(cdma) || fs::path(cdma).parent_path() != fs::path(kExe).parent_path())
    GTEST_SKIP() << "the cdma front door is not built in this build directory";
  auto r = run_command(quote(cdma) + " train --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--capture-batch"), std::string::npos) << r.output;
  r = run_command(quote(cdma) + " train --net nosuchnet");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}
