// The CUDA driver API as found at run time in the host process (libcuda.so.1 that the CUDA
// runtime already loaded). Resolved by explicit ABI-versioned names; nothing links libcuda.
#pragma once

#include <cuda.h>

namespace cdma::capture {

struct Driver {
  bool ok = false;
  decltype(&::cuStreamGetCtx) StreamGetCtx = nullptr;
  decltype(&::cuCtxGetCurrent) CtxGetCurrent = nullptr;
  decltype(&::cuCtxPushCurrent_v2) CtxPushCurrent = nullptr;
  decltype(&::cuCtxPopCurrent_v2) CtxPopCurrent = nullptr;
  decltype(&::cuCtxGetDevice) CtxGetDevice = nullptr;
  decltype(&::cuStreamIsCapturing) StreamIsCapturing = nullptr;
  decltype(&::cuStreamCreateWithPriority) StreamCreateWithPriority = nullptr;
  decltype(&::cuCtxGetStreamPriorityRange) CtxGetStreamPriorityRange = nullptr;
  decltype(&::cuEventCreate) EventCreate = nullptr;
  decltype(&::cuEventRecord) EventRecord = nullptr;
  decltype(&::cuEventSynchronize) EventSynchronize = nullptr;
  decltype(&::cuStreamWaitEvent) StreamWaitEvent = nullptr;
  decltype(&::cuMemcpyDtoHAsync_v2) MemcpyDtoHAsync = nullptr;
  decltype(&::cuMemHostAlloc) MemHostAlloc = nullptr;
  decltype(&::cuMemFreeHost) MemFreeHost = nullptr;
  decltype(&::cuPointerGetAttribute) PointerGetAttribute = nullptr;
  decltype(&::cuThreadExchangeStreamCaptureMode) ThreadExchangeStreamCaptureMode = nullptr;
  decltype(&::cuDeviceGetName) DeviceGetName = nullptr;
  // In-situ statistics (optional).
  decltype(&::cuModuleLoadData) ModuleLoadData = nullptr;
  decltype(&::cuModuleGetFunction) ModuleGetFunction = nullptr;
  decltype(&::cuLaunchKernel) LaunchKernel = nullptr;
  decltype(&::cuMemAlloc_v2) MemAlloc = nullptr;
  decltype(&::cuMemsetD8Async) MemsetD8Async = nullptr;
};

// Resolves the table from an already loaded libcuda.so.1 (never loads it). Returns false, with
// `why` set, when libcuda is not in the process or a required entry point is missing.
bool load_driver(Driver& d, const char*& why) noexcept;

}  // namespace cdma::capture
