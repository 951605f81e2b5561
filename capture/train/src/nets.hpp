// Scaled-down versions of the cDMA paper's networks (AlexNet, OverFeat, NiN, VGG, SqueezeNet,
// GoogLeNet) plus a ResNet with batch norm, for 1-channel Fashion-MNIST images upsampled to the
// network's input size. Each network is a list of named layers in forward order; forward() runs
// every layer through Net::run so that an observer can record its input X and time it.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace cdma::train {

// One layer of a network: what vDNN would see as a layer and offload the input of (unless the layer
// runs in place: then its input is the previous layer's output buffer, overwritten by this layer).
// Element-wise adds (ResNet) and channel concatenations (fire, inception) are not layers: their
// inputs are outputs of recorded layers and their output is recorded as the next layer's input.
struct LayerDef {
  std::string name;  // unique within the network ("conv1", "fire2.squeeze", "inc3a.b3x3")
  std::string op;    // trace-format op: conv, linear, relu, pool, bn, lrn, dropout, softmax
  torch::nn::AnyModule module;
  bool in_place = false;       // the module overwrites its input (ReLU): that input is not offloaded
  bool flatten_input = false;  // the input is flattened to [N, F] first (first FC after the convs)
  std::string next;            // the layer that alone consumes this layer's output, "" when none
};

// Sees every layer call of a forward pass; returns the layer's output (normally layer.module.forward(x)).
class LayerObserver {
 public:
  virtual ~LayerObserver() = default;
  virtual torch::Tensor call(LayerDef& layer, int index, const torch::Tensor& x) = 0;
};

class Net : public torch::nn::Module {
 public:
  // x: [N, 1, S, S] normalised images (S = input_size()); returns log-probabilities [N, 10].
  virtual torch::Tensor forward(torch::Tensor x) = 0;

  const std::vector<LayerDef>& layers() const { return layers_; }
  LayerDef* find(const std::string& name);
  int input_size() const { return input_size_; }
  void set_observer(LayerObserver* o) { observer_ = o; }
  // He-normal (fan-out, ReLU) weights and zero biases for conv and linear layers; BN to (1, 0).
  // Uses torch's global generator, so call after torch::manual_seed for reproducible weights.
  void init_weights();

 protected:
  explicit Net(int input_size) : input_size_(input_size) {}

  // Layer builders: each registers the module and returns its index (= forward position).
  int conv(const std::string& name, int in, int out, int k, int stride = 1, int pad = 0);
  int linear(const std::string& name, int in, int out, bool flatten_input = false);
  int relu(const std::string& name);
  int maxpool(const std::string& name, int k, int stride, int pad = 0);
  int global_avgpool(const std::string& name);
  int lrn(const std::string& name);
  int dropout(const std::string& name, double p);
  int bn(const std::string& name, int channels);
  int softmax(const std::string& name);

  // The layer's input is flattened to [N, F] before it runs (and before it is recorded).
  void flatten(int id);
  // Marks ids[i+1] as the sole consumer of ids[i]'s output.
  void link(const std::vector<int>& ids);
  torch::Tensor run(int id, torch::Tensor x);
  torch::Tensor chain(const std::vector<int>& ids, torch::Tensor x);

 private:
  template <class Holder>
  int add(const std::string& name, const std::string& op, Holder h, bool flatten_input = false);

  int input_size_;
  std::vector<LayerDef> layers_;
  LayerObserver* observer_ = nullptr;
};

struct NetInfo {
  std::string name;
  std::string summary;
  int input_size;           // images are upsampled (bilinear) from 28x28 to this
  int batch;                // default batch size
  std::int64_t iterations;  // default iterations (about two minutes on two cores)
  double lr;                // default learning rate (Adam)
};

// The networks cdma-train knows, in a fixed order.
const std::vector<NetInfo>& net_catalog();
// Builds a network by name; throws UsageError naming the known networks.
std::shared_ptr<Net> make_net(const std::string& name);
const NetInfo& net_info(const std::string& name);

}  // namespace cdma::train
