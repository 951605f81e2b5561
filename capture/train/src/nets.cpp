#include "nets.hpp"

#include "options.hpp"

#include <algorithm>

namespace cdma::train {

namespace nn = torch::nn;

// ---------------------------------------------------------------------------------------------
// Net: layer registry and builders

LayerDef* Net::find(const std::string& name) {
  auto it = std::find_if(layers_.begin(), layers_.end(), [&](const LayerDef& l) { return l.name == name; });
  return it == layers_.end() ? nullptr : &*it;
}

template <class Holder>
int Net::add(const std::string& name, const std::string& op, Holder h, bool flatten_input) {
  std::string reg = name;  // module names may not contain dots
  std::replace(reg.begin(), reg.end(), '.', '_');
  register_module(reg, h.ptr());
  layers_.push_back(LayerDef{name, op, nn::AnyModule(h), op == "relu", flatten_input, ""});
  return static_cast<int>(layers_.size()) - 1;
}

int Net::conv(const std::string& name, int in, int out, int k, int stride, int pad) {
  return add(name, "conv", nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad)));
}
int Net::linear(const std::string& name, int in, int out, bool flatten_input) {
  return add(name, "linear", nn::Linear(in, out), flatten_input);
}
// In place, as cuDNN frameworks run it: the output overwrites the input (a conv or FC output), so
// the dense pre-ReLU tensor is never kept for backward (ReLU's backward needs only its output).
int Net::relu(const std::string& name) { return add(name, "relu", nn::ReLU(nn::ReLUOptions(/*inplace=*/true))); }
int Net::maxpool(const std::string& name, int k, int stride, int pad) {
  return add(name, "pool", nn::MaxPool2d(nn::MaxPool2dOptions(k).stride(stride).padding(pad)));
}
int Net::global_avgpool(const std::string& name) {
  return add(name, "pool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
}
int Net::lrn(const std::string& name) {
  // AlexNet's cross-channel LRN: size 5, alpha 1e-4, beta 0.75, k 2.
  return add(name, "lrn", nn::LocalResponseNorm(nn::LocalResponseNormOptions(5).alpha(1e-4).beta(0.75).k(2.0)));
}
int Net::dropout(const std::string& name, double p) { return add(name, "dropout", nn::Dropout(p)); }
int Net::bn(const std::string& name, int channels) { return add(name, "bn", nn::BatchNorm2d(channels)); }
int Net::softmax(const std::string& name) { return add(name, "softmax", nn::LogSoftmax(nn::LogSoftmaxOptions(1))); }

void Net::flatten(int id) { layers_[static_cast<std::size_t>(id)].flatten_input = true; }

void Net::link(const std::vector<int>& ids) {
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) layers_[ids[i]].next = layers_[ids[i + 1]].name;
}

torch::Tensor Net::run(int id, torch::Tensor x) {
  auto& l = layers_[static_cast<std::size_t>(id)];
  if (l.flatten_input) x = x.flatten(1);
  return observer_ ? observer_->call(l, id, x) : l.module.forward(x);
}

torch::Tensor Net::chain(const std::vector<int>& ids, torch::Tensor x) {
  for (int id : ids) x = run(id, std::move(x));
  return x;
}

void Net::init_weights() {
  torch::NoGradGuard ng;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      if (c->bias.defined()) nn::init::zeros_(c->bias);
    } else if (auto* l = m->as<nn::Linear>()) {
      nn::init::kaiming_normal_(l->weight, 0.0, torch::kFanIn, torch::kReLU);
      nn::init::zeros_(l->bias);
    } else if (auto* b = m->as<nn::BatchNorm2d>()) {
      nn::init::ones_(b->weight);
      nn::init::zeros_(b->bias);
    }
  }
}

namespace {

// ---------------------------------------------------------------------------------------------
// Plain chains: AlexNet, OverFeat, VGG, NiN

class SeqNet : public Net {
 public:
  explicit SeqNet(int input_size) : Net(input_size) {}
  torch::Tensor forward(torch::Tensor x) override { return chain(seq_, std::move(x)); }

 protected:
  int push(int id) {
    seq_.push_back(id);
    return id;
  }
  void finish() { link(seq_); }

 private:
  std::vector<int> seq_;
};

// AlexNet: conv-ReLU-LRN-pool x2, three 3x3 convs, pool, FC with dropout. 64x64 input.
class AlexNet : public SeqNet {
 public:
  AlexNet() : SeqNet(64) {
    push(conv("conv1", 1, 32, 5, 2, 2));  // 32x32
    push(relu("relu1"));
    push(lrn("norm1"));
    push(maxpool("pool1", 3, 2));  // 15x15
    push(conv("conv2", 32, 64, 5, 1, 2));
    push(relu("relu2"));
    push(lrn("norm2"));
    push(maxpool("pool2", 3, 2));  // 7x7
    push(conv("conv3", 64, 96, 3, 1, 1));
    push(relu("relu3"));
    push(conv("conv4", 96, 96, 3, 1, 1));
    push(relu("relu4"));
    push(conv("conv5", 96, 64, 3, 1, 1));
    push(relu("relu5"));
    push(maxpool("pool5", 3, 2));          // 3x3
    flatten(push(dropout("drop6", 0.5)));  // as torchvision: flatten, dropout, FC
    push(linear("fc6", 64 * 3 * 3, 256));
    push(relu("relu6"));
    push(dropout("drop7", 0.5));
    push(linear("fc7", 256, 256));
    push(relu("relu7"));
    push(linear("fc8", 256, 10));
    push(softmax("prob"));
    finish();
  }
};

// OverFeat (fast): large-stride first conv, pool, 5x5 conv, three 3x3 convs, FC with dropout. 64x64.
class OverFeat : public SeqNet {
 public:
  OverFeat() : SeqNet(64) {
    push(conv("conv1", 1, 32, 7, 2, 3));  // 32x32
    push(relu("relu1"));
    push(maxpool("pool1", 2, 2));  // 16x16
    push(conv("conv2", 32, 64, 5, 1, 2));
    push(relu("relu2"));
    push(maxpool("pool2", 2, 2));  // 8x8
    push(conv("conv3", 64, 96, 3, 1, 1));
    push(relu("relu3"));
    push(conv("conv4", 96, 128, 3, 1, 1));
    push(relu("relu4"));
    push(conv("conv5", 128, 96, 3, 1, 1));
    push(relu("relu5"));
    push(maxpool("pool5", 2, 2));  // 4x4
    push(linear("fc6", 96 * 4 * 4, 384, true));
    push(relu("relu6"));
    push(dropout("drop6", 0.5));
    push(linear("fc7", 384, 256));
    push(relu("relu7"));
    push(dropout("drop7", 0.5));
    push(linear("fc8", 256, 10));
    push(softmax("prob"));
    finish();
  }
};

// VGG: stacks of 3x3 convs (2, 2, 3) with max-pools, then FC-ReLU-dropout x2. 32x32.
class Vgg : public SeqNet {
 public:
  Vgg() : SeqNet(32) {
    const int stages[3][2] = {{2, 16}, {2, 32}, {3, 64}};
    int in = 1;
    for (int s = 0; s < 3; ++s) {
      for (int c = 0; c < stages[s][0]; ++c) {
        std::string id = std::to_string(s + 1) + "_" + std::to_string(c + 1);
        push(conv("conv" + id, in, stages[s][1], 3, 1, 1));
        push(relu("relu" + id));
        in = stages[s][1];
      }
      push(maxpool("pool" + std::to_string(s + 1), 2, 2));
    }
    push(linear("fc6", 64 * 4 * 4, 256, true));
    push(relu("relu6"));
    push(dropout("drop6", 0.5));
    push(linear("fc7", 256, 256));
    push(relu("relu7"));
    push(dropout("drop7", 0.5));
    push(linear("fc8", 256, 10));
    push(softmax("prob"));
    finish();
  }
};

// Network in Network: three mlpconv blocks (conv + two 1x1 convs, each with ReLU), max-pool and
// dropout between blocks, global average pooling of 10 maps instead of FC layers. 32x32.
class NiN : public SeqNet {
 public:
  NiN() : SeqNet(32) {
    struct Block {
      int k, c0, c1, c2;
    };
    const Block blocks[3] = {{5, 48, 32, 32}, {5, 64, 64, 64}, {3, 96, 96, 10}};
    int in = 1;
    for (int b = 0; b < 3; ++b) {
      std::string n = std::to_string(b + 1);
      const Block& k = blocks[b];
      push(conv("conv" + n, in, k.c0, k.k, 1, k.k / 2));
      push(relu("relu" + n));
      push(conv("cccp" + n + "a", k.c0, k.c1, 1));
      push(relu("relu" + n + "a"));
      push(conv("cccp" + n + "b", k.c1, k.c2, 1));
      push(relu("relu" + n + "b"));
      in = k.c2;
      if (b < 2) {
        push(maxpool("pool" + n, 3, 2, 1));  // 32 -> 16 -> 8
        push(dropout("drop" + n, 0.5));
      }
    }
    push(global_avgpool("pool3"));
    flatten(push(softmax("prob")));  // the pooled [N, 10, 1, 1] maps are the class scores
    finish();
  }
};

// ---------------------------------------------------------------------------------------------
// SqueezeNet: fire modules (1x1 squeeze, then 1x1 and 3x3 expands concatenated). 32x32.

class SqueezeNet : public Net {
 public:
  SqueezeNet() : Net(32) {
    stem_ = {conv("conv1", 1, 32, 3, 1, 1), relu("relu1"), maxpool("pool1", 3, 2)};  // 15x15
    link(stem_);
    fires_.push_back(fire("fire2", 32, 16, 32));
    fires_.push_back(fire("fire3", 64, 16, 32));
    pool3_ = maxpool("pool3", 3, 2);  // 7x7
    fires_.push_back(fire("fire4", 64, 24, 48));
    fires_.push_back(fire("fire5", 96, 24, 48));
    pool5_ = maxpool("pool5", 3, 2);  // 3x3
    fires_.push_back(fire("fire6", 96, 32, 64));
    fires_.push_back(fire("fire7", 128, 32, 64));
    tail_ = {dropout("drop9", 0.5), conv("conv10", 128, 10, 1), relu("relu10"), global_avgpool("pool10"),
             softmax("prob")};
    flatten(tail_.back());
    link(tail_);
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = chain(stem_, std::move(x));
    x = fire_forward(fires_[0], x);
    x = fire_forward(fires_[1], x);
    x = run(pool3_, x);
    x = fire_forward(fires_[2], x);
    x = fire_forward(fires_[3], x);
    x = run(pool5_, x);
    x = fire_forward(fires_[4], x);
    x = fire_forward(fires_[5], x);
    return chain(tail_, x);
  }

 private:
  struct Fire {
    std::vector<int> squeeze, e1, e3;
  };
  Fire fire(const std::string& n, int in, int s, int e) {
    Fire f;
    f.squeeze = {conv(n + ".squeeze1x1", in, s, 1), relu(n + ".squeeze1x1_relu")};
    f.e1 = {conv(n + ".expand1x1", s, e, 1), relu(n + ".expand1x1_relu")};
    f.e3 = {conv(n + ".expand3x3", s, e, 3, 1, 1), relu(n + ".expand3x3_relu")};
    link(f.squeeze);
    link(f.e1);
    link(f.e3);
    return f;
  }
  torch::Tensor fire_forward(const Fire& f, torch::Tensor x) {
    auto s = chain(f.squeeze, std::move(x));
    auto a = chain(f.e1, s);
    auto b = chain(f.e3, s);
    return torch::cat({a, b}, 1);
  }

  std::vector<int> stem_, tail_;
  std::vector<Fire> fires_;
  int pool3_ = 0, pool5_ = 0;
};

// ---------------------------------------------------------------------------------------------
// GoogLeNet: stem with LRN, inception modules (1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1). 32x32.

class GoogLeNet : public Net {
 public:
  GoogLeNet() : Net(32) {
    stem_ = {conv("conv1", 1, 32, 3, 1, 1),
             relu("relu1"),
             maxpool("pool1", 3, 2, 1),  // 16x16
             lrn("norm1"),
             conv("conv2_reduce", 32, 32, 1),
             relu("conv2_reduce_relu"),
             conv("conv2", 32, 64, 3, 1, 1),
             relu("relu2"),
             lrn("norm2"),
             maxpool("pool2", 3, 2, 1)};  // 8x8
    link(stem_);
    inc3a_ = inception("inc3a", 64, 16, 24, 32, 4, 8, 8);     // 64 out
    inc3b_ = inception("inc3b", 64, 32, 32, 48, 8, 16, 16);   // 112 out
    pool3_ = maxpool("pool3", 3, 2, 1);                       // 4x4
    inc4a_ = inception("inc4a", 112, 48, 24, 52, 4, 12, 16);  // 128 out
    tail_ = {global_avgpool("pool4"), dropout("drop4", 0.4), linear("fc", 128, 10, true), softmax("prob")};
    link(tail_);
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = chain(stem_, std::move(x));
    x = inc_forward(inc3a_, x);
    x = inc_forward(inc3b_, x);
    x = run(pool3_, x);
    x = inc_forward(inc4a_, x);
    return chain(tail_, x);
  }

 private:
  struct Inception {
    std::vector<int> b1, b2, b3, b4;
  };
  Inception inception(const std::string& n, int in, int c1, int r3, int c3, int r5, int c5, int cp) {
    Inception m;
    m.b1 = {conv(n + ".1x1", in, c1, 1), relu(n + ".1x1_relu")};
    m.b2 = {conv(n + ".3x3_reduce", in, r3, 1), relu(n + ".3x3_reduce_relu"), conv(n + ".3x3", r3, c3, 3, 1, 1),
            relu(n + ".3x3_relu")};
    m.b3 = {conv(n + ".5x5_reduce", in, r5, 1), relu(n + ".5x5_reduce_relu"), conv(n + ".5x5", r5, c5, 5, 1, 2),
            relu(n + ".5x5_relu")};
    m.b4 = {maxpool(n + ".pool", 3, 1, 1), conv(n + ".pool_proj", in, cp, 1), relu(n + ".pool_proj_relu")};
    link(m.b1);
    link(m.b2);
    link(m.b3);
    link(m.b4);
    return m;
  }
  torch::Tensor inc_forward(const Inception& m, const torch::Tensor& x) {
    return torch::cat({chain(m.b1, x), chain(m.b2, x), chain(m.b3, x), chain(m.b4, x)}, 1);
  }

  std::vector<int> stem_, tail_;
  Inception inc3a_, inc3b_, inc4a_;
  int pool3_ = 0;
};

// ---------------------------------------------------------------------------------------------
// ResNet (modern reference): conv-BN-ReLU stem, three stages of two basic blocks (16, 32, 64
// channels), 1x1 projection shortcuts where the shape changes. 32x32.

class ResNet : public Net {
 public:
  ResNet() : Net(32) {
    stem_ = {conv("conv1", 1, 16, 3, 1, 1), bn("bn1", 16), relu("relu1")};
    link(stem_);
    const int widths[3] = {16, 32, 64};
    int in = 16;
    for (int s = 0; s < 3; ++s) {
      for (int b = 0; b < 2; ++b) {
        int stride = (s > 0 && b == 0) ? 2 : 1;
        blocks_.push_back(block("layer" + std::to_string(s + 1) + "." + std::to_string(b), in, widths[s], stride));
        in = widths[s];
      }
    }
    tail_ = {global_avgpool("avgpool"), linear("fc", 64, 10, true), softmax("prob")};
    link(tail_);
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = chain(stem_, std::move(x));
    for (const auto& b : blocks_) {
      auto y = chain(b.main, x);
      auto s = b.shortcut.empty() ? x : chain(b.shortcut, x);
      x = run(b.out, y + s);
    }
    return chain(tail_, x);
  }

 private:
  struct Block {
    std::vector<int> main, shortcut;
    int out = 0;
  };
  Block block(const std::string& n, int in, int out, int stride) {
    Block b;
    b.main = {conv(n + ".conv1", in, out, 3, stride, 1), bn(n + ".bn1", out), relu(n + ".relu1"),
              conv(n + ".conv2", out, out, 3, 1, 1), bn(n + ".bn2", out)};
    if (stride != 1 || in != out)
      b.shortcut = {conv(n + ".downsample.conv", in, out, 1, stride), bn(n + ".downsample.bn", out)};
    b.out = relu(n + ".relu2");
    link(b.main);
    link(b.shortcut);
    return b;
  }

  std::vector<int> stem_, tail_;
  std::vector<Block> blocks_;
};

}  // namespace

const std::vector<NetInfo>& net_catalog() {
  // Default iterations give about two minutes of training on one thread of a 2-core machine
  // (see data/README.md); learning rates are for Adam.
  static const std::vector<NetInfo> k = {
      {"alexnet", "AlexNet: conv/ReLU/LRN/max-pool, FC with dropout (64x64)", 64, 64, 300, 1e-3},
      {"overfeat", "OverFeat (fast): strided conv, 5 convs, FC with dropout (64x64)", 64, 64, 300, 1e-3},
      {"nin", "Network in Network: 3 mlpconv blocks, global average pooling (32x32)", 32, 64, 300, 1e-3},
      {"vgg", "VGG: 3x3 conv stacks (2-2-3) with max-pools, FC with dropout (32x32)", 32, 64, 600, 1e-3},
      {"squeezenet", "SqueezeNet: 6 fire modules, conv10 + global average pooling (32x32)", 32, 64, 700, 1e-3},
      {"googlenet", "GoogLeNet: stem with LRN, 3 inception modules (32x32)", 32, 64, 300, 1e-3},
      {"resnet", "ResNet-14 with batch norm (modern reference; 32x32)", 32, 64, 400, 1e-3},
  };
  return k;
}

const NetInfo& net_info(const std::string& name) {
  for (const auto& n : net_catalog())
    if (n.name == name) return n;
  std::string known;
  for (const auto& n : net_catalog()) known += (known.empty() ? "" : ", ") + n.name;
  throw UsageError("cdma train: unknown network '" + name + "' (known: " + known + ")");
}

std::shared_ptr<Net> make_net(const std::string& name) {
  net_info(name);  // validates
  std::shared_ptr<Net> n;
  if (name == "alexnet")
    n = std::make_shared<AlexNet>();
  else if (name == "overfeat")
    n = std::make_shared<OverFeat>();
  else if (name == "nin")
    n = std::make_shared<NiN>();
  else if (name == "vgg")
    n = std::make_shared<Vgg>();
  else if (name == "squeezenet")
    n = std::make_shared<SqueezeNet>();
  else if (name == "googlenet")
    n = std::make_shared<GoogLeNet>();
  else
    n = std::make_shared<ResNet>();
  return n;
}

}  // namespace cdma::train
