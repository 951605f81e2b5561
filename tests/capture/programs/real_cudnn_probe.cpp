// Runs against the REAL cuDNN 9 of the machine (no GPU needed): descriptor-level calls that work
// without a device, and calls that fail without one. Prints every status, so that a run under
// the interposer can be compared with a run without it (the statuses must be identical).
#include <cudnn.h>

#include <cstdint>
#include <cstdio>
#include <initializer_list>

int main() {
  std::printf("version %zu\n", cudnnGetVersion());
  cudnnHandle_t h = nullptr;
  std::printf("cudnnCreate %d\n", static_cast<int>(cudnnCreate(&h)));
  auto tensor = [](int64_t uid, int64_t c) {
    cudnnBackendDescriptor_t d = nullptr;
    std::printf("create tensor %d\n",
                static_cast<int>(cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &d)));
    int64_t dims[4] = {8, c, 56, 56}, str[4] = {c * 56 * 56, 1, 56 * c, c}, align = 16;
    cudnnDataType_t dt = CUDNN_DATA_HALF;
    std::printf(
        "set %d %d %d %d %d\n",
        static_cast<int>(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt)),
        static_cast<int>(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims)),
        static_cast<int>(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str)),
        static_cast<int>(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)),
        static_cast<int>(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align)));
    std::printf("finalize tensor %d\n", static_cast<int>(cudnnBackendFinalize(d)));
    return d;
  };
  auto x = tensor('x', 64), w = tensor('w', 64), y = tensor('y', 64);
  cudnnBackendDescriptor_t op = nullptr;
  std::printf("create op %d\n", static_cast<int>(cudnnBackendCreateDescriptor(
                                    CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &op)));
  std::printf("set op x %d\n", static_cast<int>(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)));
  std::printf("finalize incomplete op %d\n", static_cast<int>(cudnnBackendFinalize(op)));
  std::printf("execute without handle %d\n", static_cast<int>(cudnnBackendExecute(nullptr, nullptr, nullptr)));
  std::printf("conv forward without handle %d\n",
              static_cast<int>(cudnnConvolutionForward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, nullptr,
                                                       nullptr, nullptr)));
  for (auto d : {op, x, w, y}) std::printf("destroy %d\n", static_cast<int>(cudnnBackendDestroyDescriptor(d)));
  return 0;
}
