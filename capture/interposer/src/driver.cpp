#include "driver.hpp"

#include <dlfcn.h>

#include <type_traits>

namespace cdma::capture {

bool load_driver(Driver& d, const char*& why) noexcept {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (!h) {
    why = "libcuda.so.1 is not loaded in this process";
    return false;
  }
  bool all = true;
  auto get = [&](auto& fn, const char* name, bool required) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
    if (!fn && required) all = false;
  };
  get(d.StreamGetCtx, "cuStreamGetCtx", true);
  get(d.CtxGetCurrent, "cuCtxGetCurrent", true);
  get(d.CtxPushCurrent, "cuCtxPushCurrent_v2", true);
  get(d.CtxPopCurrent, "cuCtxPopCurrent_v2", true);
  get(d.CtxGetDevice, "cuCtxGetDevice", true);
  get(d.StreamIsCapturing, "cuStreamIsCapturing", true);
  get(d.StreamCreateWithPriority, "cuStreamCreateWithPriority", true);
  get(d.CtxGetStreamPriorityRange, "cuCtxGetStreamPriorityRange", false);
  get(d.EventCreate, "cuEventCreate", true);
  get(d.EventRecord, "cuEventRecord", true);
  get(d.EventSynchronize, "cuEventSynchronize", true);
  get(d.StreamWaitEvent, "cuStreamWaitEvent", true);
  get(d.MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", true);
  get(d.MemHostAlloc, "cuMemHostAlloc", true);
  get(d.MemFreeHost, "cuMemFreeHost", false);
  get(d.PointerGetAttribute, "cuPointerGetAttribute", true);
  get(d.ThreadExchangeStreamCaptureMode, "cuThreadExchangeStreamCaptureMode", false);
  get(d.DeviceGetName, "cuDeviceGetName", false);
  get(d.ModuleLoadData, "cuModuleLoadData", false);
  get(d.ModuleGetFunction, "cuModuleGetFunction", false);
  get(d.LaunchKernel, "cuLaunchKernel", false);
  get(d.MemAlloc, "cuMemAlloc_v2", false);
  get(d.MemsetD8Async, "cuMemsetD8Async", false);
  dlclose(h);  // drops our NOLOAD reference only; the host keeps libcuda loaded
  if (!all) {
    why = "libcuda.so.1 lacks a driver entry point the capture needs";
    return false;
  }
  d.ok = true;
  return true;
}

}  // namespace cdma::capture
