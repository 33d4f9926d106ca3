# LibTorch from a pip torch wheel (AMLRUN_TORCH_WHEEL = its torch/ folder),
# CPU part only: libtorch_cpu and libc10 with the wheel's headers. The wheel's
# own TorchConfig.cmake is not used because for the default (CUDA) wheels it
# fails without a CUDA toolkit, and the CPU trainer needs none of it; a
# CUDA-enabled worker build still goes through find_package(Torch) with the
# toolkit installed (lib/train/README.md). Sets what find_package(Torch)
# would: TORCH_LIBRARIES and TORCH_CXX_FLAGS.
set(wheel "${AMLRUN_TORCH_WHEEL}")
if(NOT EXISTS "${wheel}/include/torch/csrc/api/include/torch/version.h")
  message(FATAL_ERROR "AMLRUN_TORCH_WHEEL=${wheel} is not a torch wheel's package folder "
    "(no include/torch/csrc/api/include/torch/version.h): set it to the output of "
    "python -c 'import torch, os; print(os.path.dirname(torch.__file__))' (scripts/torch-pip-env.sh prints it)")
endif()
find_library(AMLRUN_WHEEL_TORCH_CPU torch_cpu PATHS "${wheel}/lib" NO_DEFAULT_PATH REQUIRED)
find_library(AMLRUN_WHEEL_C10 c10 PATHS "${wheel}/lib" NO_DEFAULT_PATH REQUIRED)
# The wheel's include/ also carries its bundled fmt (v12) and protobuf
# headers; on the include path they would shadow Debian's fmt 9 and protobuf
# 3.21, which amlrun and ONNX export link, and fmt calls would then miss at
# link time (or worse, mix versions). So the include path gets a folder of
# links to the wheel's headers without those.
set(shim "${CMAKE_BINARY_DIR}/torch_wheel_include")
file(REMOVE_RECURSE "${shim}")
file(MAKE_DIRECTORY "${shim}")
file(GLOB entries RELATIVE "${wheel}/include" "${wheel}/include/*")
foreach(entry ${entries})
  if(NOT entry MATCHES "^(fmt|google|pybind11)$")
    file(CREATE_LINK "${wheel}/include/${entry}" "${shim}/${entry}" SYMBOLIC)
  endif()
endforeach()
add_library(amlrun_torch_wheel INTERFACE)
target_include_directories(amlrun_torch_wheel SYSTEM INTERFACE
  "${shim}" "${wheel}/include/torch/csrc/api/include")
# The shared libraries are linked by full path, so CMake puts the wheel's lib
# folder on the build tree's RPATH and the binary runs without
# LD_LIBRARY_PATH; libtorch_cpu finds its own dependencies (libgomp, CUDA
# runtime stubs) through its RPATH inside the wheel.
target_link_libraries(amlrun_torch_wheel INTERFACE "${AMLRUN_WHEEL_TORCH_CPU}" "${AMLRUN_WHEEL_C10}")
set(TORCH_LIBRARIES amlrun_torch_wheel)
# PyPI's wheels use the C++11 ABI from torch 2.7 on (scripts/torch-pip-env.sh
# refuses a wheel whose torch._C._GLIBCXX_USE_CXX11_ABI is False), the same
# as the Debian libraries the rest of amlrun links.
set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1")
message(STATUS "LibTorch: the pip wheel in ${wheel} (libtorch_cpu, libc10)")
