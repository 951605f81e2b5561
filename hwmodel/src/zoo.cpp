// The network zoo (layer lists after the original papers; PAPERS.md) and the roofline.
#include <cdma/hwmodel/zoo.hpp>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace cdma::hwmodel {

namespace {

double D(std::int64_t v) { return static_cast<double>(v); }

struct Shape {
  std::int64_t c = 0, h = 1, w = 1;
  std::int64_t elems() const { return c * h * w; }
};

struct T {
  int id = -1;
  Shape s;
  bool sparse = false;  // can hold ReLU zeros
};

// Emits layers in forward order, tracking per-sample shapes; sizes are per batch.
class Builder {
 public:
  Builder(std::string name, int batch, int eb) : batch_(batch), eb_(eb) {
    net_.name = std::move(name);
    net_.source = "zoo";
    net_.batch = batch;
  }

  T input(Shape s) {
    T t{next_++, s, false};
    net_.input_tensor = t.id;
    return t;
  }

  T conv(const std::string& name, const T& x, std::int64_t cout, int k, int stride = 1, int pad = 0, bool relu = true,
         int groups = 1) {
    Shape o{cout, out_dim(x.s.h, k, stride, pad, false), out_dim(x.s.w, k, stride, pad, false)};
    const double cin = D(x.s.c / groups), kk = D(k) * D(k);
    double weights = D(cout) * cin * kk + D(cout);
    double flops = 2.0 * batch_ * D(o.elems()) * cin * kk;
    return emit(name, "conv", x, o, flops, weights, relu);
  }
  T fc(const std::string& name, const T& x, std::int64_t out, bool relu = true) {
    Shape o{out, 1, 1};
    double weights = D(x.s.elems()) * D(out) + D(out);
    return emit(name, "linear", x, o, 2.0 * batch_ * D(x.s.elems()) * D(out), weights, relu);
  }
  // Max or average pooling; ceil_mode as Caffe rounds output sizes.
  T pool(const std::string& name, const T& x, int k, int stride, int pad = 0, bool ceil_mode = false) {
    Shape o{x.s.c, out_dim(x.s.h, k, stride, pad, ceil_mode), out_dim(x.s.w, k, stride, pad, ceil_mode)};
    T y = emit(name, "pool", x, o, 1.0 * batch_ * D(o.elems()) * k * k, 0, false);
    return keep_sparsity(y, x);
  }
  T lrn(const std::string& name, const T& x) {
    T y = emit(name, "lrn", x, x.s, 10.0 * batch_ * D(x.s.elems()), 0, false);
    return keep_sparsity(y, x);
  }
  T dropout(const std::string& name, const T& x) {
    T y = emit(name, "dropout", x, x.s, 2.0 * batch_ * D(x.s.elems()), 0, false);
    y.sparse = true;  // dropout zeroes elements
    return y;
  }
  T bn(const std::string& name, const T& x, bool relu) {
    return emit(name, "bn", x, x.s, 5.0 * batch_ * D(x.s.elems()), 4.0 * D(x.s.c), relu);
  }
  T softmax(const std::string& name, const T& x) {
    return emit(name, "softmax", x, x.s, 5.0 * batch_ * D(x.s.elems()), 0, false);
  }
  // Residual add (+ReLU): its backward needs no activation.
  T add(const std::string& name, const T& a, const T& b, bool relu) {
    T y = emit(name, "add", a, a.s, 1.0 * batch_ * D(a.s.elems()), 0, relu, /*needs_x=*/false);
    net_.layers.back().dram_bytes += bytes(b.s);
    return y;
  }
  // Channel concatenation (a copy); its backward needs no activation.
  T concat(const std::string& name, const std::vector<T>& xs) {
    Shape o = xs.front().s;
    o.c = 0;
    bool sparse = true;
    for (const auto& x : xs) {
      o.c += x.s.c;
      sparse = sparse && x.sparse;
    }
    T y = emit(name, "concat", xs.front(), o, 0, 0, false, /*needs_x=*/false);
    net_.layers.back().dram_bytes = 2 * bytes(o);
    y.sparse = sparse;
    return y;
  }

  Network take() { return std::move(net_); }

 private:
  static std::int64_t out_dim(std::int64_t in, int k, int stride, int pad, bool ceil_mode) {
    std::int64_t span = in + 2 * pad - k;
    if (span < 0) throw ModelError(fmt::format("zoo: kernel {} larger than input {}", k, in));
    std::int64_t o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && pad > 0 && (o - 1) * stride >= in + pad) --o;  // last window must start inside
    return o;
  }
  double bytes(const Shape& s) const { return D(s.elems()) * batch_ * eb_; }

  T emit(const std::string& name, const char* op, const T& x, Shape o, double flops, double weights, bool relu,
         bool needs_x = true) {
    Layer l;
    l.name = name;
    l.op = op;
    if (needs_x) {
      l.x_tensor = x.id;
      l.x_bytes = x.s.elems() * batch_ * eb_;
      l.x_sparse = x.sparse;
    }
    l.flops = flops;
    l.dram_bytes = bytes(x.s) + bytes(o) + weights * eb_;
    l.out_shape = {o.c, o.h, o.w};
    net_.layers.push_back(std::move(l));
    return T{next_++, o, relu};
  }
  static T keep_sparsity(T y, const T& x) {
    y.sparse = x.sparse;
    return y;
  }

  Network net_;
  int batch_, eb_;
  int next_ = 0;
};

Network alexnet(int batch, int eb) {
  Builder b("alexnet", batch, eb);  // Krizhevsky et al. 2012 (two-tower grouping kept as groups=2)
  T x = b.input({3, 224, 224});
  x = b.conv("conv1", x, 96, 11, 4, 2);
  x = b.lrn("norm1", x);
  x = b.pool("pool1", x, 3, 2);
  x = b.conv("conv2", x, 256, 5, 1, 2, true, 2);
  x = b.lrn("norm2", x);
  x = b.pool("pool2", x, 3, 2);
  x = b.conv("conv3", x, 384, 3, 1, 1);
  x = b.conv("conv4", x, 384, 3, 1, 1, true, 2);
  x = b.conv("conv5", x, 256, 3, 1, 1, true, 2);
  x = b.pool("pool5", x, 3, 2);
  x = b.fc("fc6", x, 4096);
  x = b.dropout("drop6", x);
  x = b.fc("fc7", x, 4096);
  x = b.dropout("drop7", x);
  x = b.fc("fc8", x, 1000, false);
  b.softmax("prob", x);
  return b.take();
}

Network overfeat(int batch, int eb) {
  Builder b("overfeat", batch, eb);  // Sermanet et al. 2013, "fast" model, Table 1
  T x = b.input({3, 231, 231});
  x = b.conv("conv1", x, 96, 11, 4);
  x = b.pool("pool1", x, 2, 2);
  x = b.conv("conv2", x, 256, 5, 1);
  x = b.pool("pool2", x, 2, 2);
  x = b.conv("conv3", x, 512, 3, 1, 1);
  x = b.conv("conv4", x, 1024, 3, 1, 1);
  x = b.conv("conv5", x, 1024, 3, 1, 1);
  x = b.pool("pool5", x, 2, 2);
  x = b.fc("fc6", x, 3072);
  x = b.dropout("drop6", x);
  x = b.fc("fc7", x, 4096);
  x = b.dropout("drop7", x);
  x = b.fc("fc8", x, 1000, false);
  b.softmax("prob", x);
  return b.take();
}

Network nin(int batch, int eb) {
  Builder b("nin", batch, eb);  // Lin et al. 2013, ImageNet model (mlpconv = conv + two 1x1 "cccp")
  T x = b.input({3, 224, 224});
  x = b.conv("conv1", x, 96, 11, 4);
  x = b.conv("cccp1", x, 96, 1);
  x = b.conv("cccp2", x, 96, 1);
  x = b.pool("pool1", x, 3, 2, 0, true);
  x = b.conv("conv2", x, 256, 5, 1, 2);
  x = b.conv("cccp3", x, 256, 1);
  x = b.conv("cccp4", x, 256, 1);
  x = b.pool("pool2", x, 3, 2, 0, true);
  x = b.conv("conv3", x, 384, 3, 1, 1);
  x = b.conv("cccp5", x, 384, 1);
  x = b.conv("cccp6", x, 384, 1);
  x = b.pool("pool3", x, 3, 2, 0, true);
  x = b.dropout("drop", x);
  x = b.conv("conv4", x, 1024, 3, 1, 1);
  x = b.conv("cccp7", x, 1024, 1);
  x = b.conv("cccp8", x, 1000, 1);
  x = b.pool("pool4", x, static_cast<int>(x.s.h), 1);  // global average pooling
  b.softmax("prob", x);
  return b.take();
}

Network vgg16(int batch, int eb) {
  Builder b("vgg16", batch, eb);  // Simonyan & Zisserman 2014, configuration D
  T x = b.input({3, 224, 224});
  const int widths[5] = {64, 128, 256, 512, 512};
  const int convs[5] = {2, 2, 3, 3, 3};
  for (int s = 0; s < 5; ++s) {
    for (int c = 0; c < convs[s]; ++c) x = b.conv(fmt::format("conv{}_{}", s + 1, c + 1), x, widths[s], 3, 1, 1);
    x = b.pool(fmt::format("pool{}", s + 1), x, 2, 2);
  }
  x = b.fc("fc6", x, 4096);
  x = b.dropout("drop6", x);
  x = b.fc("fc7", x, 4096);
  x = b.dropout("drop7", x);
  x = b.fc("fc8", x, 1000, false);
  b.softmax("prob", x);
  return b.take();
}

T fire(Builder& b, const std::string& n, const T& x, int s, int e) {
  T sq = b.conv(n + "/squeeze1x1", x, s, 1);
  T e1 = b.conv(n + "/expand1x1", sq, e, 1);
  T e3 = b.conv(n + "/expand3x3", sq, e, 3, 1, 1);
  return b.concat(n + "/concat", {e1, e3});
}

Network squeezenet(int batch, int eb, bool v11) {
  Builder b(v11 ? "squeezenet1.1" : "squeezenet", batch, eb);  // Iandola et al. 2016
  T x = b.input({3, 224, 224});
  if (!v11) {
    x = b.conv("conv1", x, 96, 7, 2);
    x = b.pool("pool1", x, 3, 2, 0, true);
    x = fire(b, "fire2", x, 16, 64);
    x = fire(b, "fire3", x, 16, 64);
    x = fire(b, "fire4", x, 32, 128);
    x = b.pool("pool4", x, 3, 2, 0, true);
    x = fire(b, "fire5", x, 32, 128);
    x = fire(b, "fire6", x, 48, 192);
    x = fire(b, "fire7", x, 48, 192);
    x = fire(b, "fire8", x, 64, 256);
    x = b.pool("pool8", x, 3, 2, 0, true);
    x = fire(b, "fire9", x, 64, 256);
  } else {
    x = b.conv("conv1", x, 64, 3, 2);
    x = b.pool("pool1", x, 3, 2, 0, true);
    x = fire(b, "fire2", x, 16, 64);
    x = fire(b, "fire3", x, 16, 64);
    x = b.pool("pool3", x, 3, 2, 0, true);
    x = fire(b, "fire4", x, 32, 128);
    x = fire(b, "fire5", x, 32, 128);
    x = b.pool("pool5", x, 3, 2, 0, true);
    x = fire(b, "fire6", x, 48, 192);
    x = fire(b, "fire7", x, 48, 192);
    x = fire(b, "fire8", x, 64, 256);
    x = fire(b, "fire9", x, 64, 256);
  }
  x = b.dropout("drop9", x);
  x = b.conv("conv10", x, 1000, 1);
  x = b.pool("pool10", x, static_cast<int>(x.s.h), 1);
  b.softmax("prob", x);
  return b.take();
}

T inception(Builder& b, const std::string& n, const T& x, int c1, int c3r, int c3, int c5r, int c5, int pp) {
  T b1 = b.conv(n + "/1x1", x, c1, 1);
  T b2 = b.conv(n + "/3x3_reduce", x, c3r, 1);
  b2 = b.conv(n + "/3x3", b2, c3, 3, 1, 1);
  T b3 = b.conv(n + "/5x5_reduce", x, c5r, 1);
  b3 = b.conv(n + "/5x5", b3, c5, 5, 1, 2);
  T b4 = b.pool(n + "/pool", x, 3, 1, 1);
  b4 = b.conv(n + "/pool_proj", b4, pp, 1);
  return b.concat(n + "/output", {b1, b2, b3, b4});
}

Network googlenet(int batch, int eb) {
  Builder b("googlenet", batch, eb);  // Szegedy et al. 2014, Table 1 (auxiliary classifiers left out)
  T x = b.input({3, 224, 224});
  x = b.conv("conv1/7x7_s2", x, 64, 7, 2, 3);
  x = b.pool("pool1/3x3_s2", x, 3, 2, 0, true);
  x = b.lrn("pool1/norm1", x);
  x = b.conv("conv2/3x3_reduce", x, 64, 1);
  x = b.conv("conv2/3x3", x, 192, 3, 1, 1);
  x = b.lrn("conv2/norm2", x);
  x = b.pool("pool2/3x3_s2", x, 3, 2, 0, true);
  x = inception(b, "inception_3a", x, 64, 96, 128, 16, 32, 32);
  x = inception(b, "inception_3b", x, 128, 128, 192, 32, 96, 64);
  x = b.pool("pool3/3x3_s2", x, 3, 2, 0, true);
  x = inception(b, "inception_4a", x, 192, 96, 208, 16, 48, 64);
  x = inception(b, "inception_4b", x, 160, 112, 224, 24, 64, 64);
  x = inception(b, "inception_4c", x, 128, 128, 256, 24, 64, 64);
  x = inception(b, "inception_4d", x, 112, 144, 288, 32, 64, 64);
  x = inception(b, "inception_4e", x, 256, 160, 320, 32, 128, 128);
  x = b.pool("pool4/3x3_s2", x, 3, 2, 0, true);
  x = inception(b, "inception_5a", x, 256, 160, 320, 32, 128, 128);
  x = inception(b, "inception_5b", x, 384, 192, 384, 48, 128, 128);
  x = b.pool("pool5/7x7_s1", x, 7, 1);
  x = b.dropout("pool5/drop", x);
  x = b.fc("loss3/classifier", x, 1000, false);
  b.softmax("prob", x);
  return b.take();
}

Network resnet50(int batch, int eb) {
  Builder b("resnet50", batch, eb);  // He et al. 2015, 50-layer, stride in the first 1x1 (v1)
  T x = b.input({3, 224, 224});
  x = b.conv("conv1", x, 64, 7, 2, 3, false);
  x = b.bn("bn_conv1", x, true);
  x = b.pool("pool1", x, 3, 2, 1);
  const int widths[4] = {64, 128, 256, 512};
  const int blocks[4] = {3, 4, 6, 3};
  for (int s = 0; s < 4; ++s) {
    for (int k = 0; k < blocks[s]; ++k) {
      const std::string n = fmt::format("res{}{}", s + 2, static_cast<char>('a' + k));
      const int stride = (k == 0 && s > 0) ? 2 : 1;
      const std::int64_t w = widths[s];
      T shortcut = x;
      if (k == 0) {
        shortcut = b.conv(n + "_branch1", x, 4 * w, 1, stride, 0, false);
        shortcut = b.bn("bn" + n.substr(3) + "_branch1", shortcut, false);
      }
      T y = b.conv(n + "_branch2a", x, w, 1, stride, 0, false);
      y = b.bn("bn" + n.substr(3) + "_branch2a", y, true);
      y = b.conv(n + "_branch2b", y, w, 3, 1, 1, false);
      y = b.bn("bn" + n.substr(3) + "_branch2b", y, true);
      y = b.conv(n + "_branch2c", y, 4 * w, 1, 1, 0, false);
      y = b.bn("bn" + n.substr(3) + "_branch2c", y, false);
      x = b.add(n, y, shortcut, true);
    }
  }
  x = b.pool("pool5", x, 7, 1);
  x = b.fc("fc1000", x, 1000, false);
  b.softmax("prob", x);
  return b.take();
}

}  // namespace

std::vector<std::string> zoo_names() {
  return {"alexnet", "overfeat", "nin", "vgg16", "squeezenet", "squeezenet1.1", "googlenet", "resnet50"};
}

std::vector<std::string> paper_networks() { return {"alexnet", "overfeat", "nin", "vgg16", "squeezenet", "googlenet"}; }

Network zoo_network(const std::string& name, int batch, int element_bytes) {
  if (batch < 1) throw ModelError(fmt::format("batch size must be >= 1, got {}", batch));
  if (element_bytes != 4 && element_bytes != 2)
    throw ModelError(fmt::format("element size must be 4 or 2 bytes, got {}", element_bytes));
  if (name == "alexnet") return alexnet(batch, element_bytes);
  if (name == "overfeat") return overfeat(batch, element_bytes);
  if (name == "nin") return nin(batch, element_bytes);
  if (name == "vgg16" || name == "vgg") return vgg16(batch, element_bytes);
  if (name == "squeezenet" || name == "squeezenet1.0") return squeezenet(batch, element_bytes, false);
  if (name == "squeezenet1.1") return squeezenet(batch, element_bytes, true);
  if (name == "googlenet") return googlenet(batch, element_bytes);
  if (name == "resnet50") return resnet50(batch, element_bytes);
  throw ModelError(fmt::format("unknown network '{}' (zoo: {})", name, fmt::join(zoo_names(), ", ")));
}

void apply_roofline(Network& net, const GpuPreset& gpu, const std::string& precision, double bwd_factor) {
  if (!(bwd_factor >= 0)) throw ModelError(fmt::format("backward factor must be >= 0, got {}", bwd_factor));
  const double flops_per_s = gpu.peak_flops(precision) * gpu.compute_efficiency;
  const double bytes_per_s = gpu.dram_gbps * 1e9 * gpu.dram_efficiency;
  for (auto& l : net.layers) {
    Ps f = std::max(transfer_ps(l.flops, flops_per_s), transfer_ps(l.dram_bytes, bytes_per_s));
    l.fwd_ps = f;
    l.bwd_ps = static_cast<Ps>(std::llround(static_cast<double>(f) * bwd_factor));
  }
}

}  // namespace cdma::hwmodel
