#pragma once
// The web view's stylesheet and its one small script, compiled into the
// binary: nothing to install, no build step, no framework. Served from
// /static/ so the pages' Content-Security-Policy can forbid inline script.
#include <string_view>

namespace amlrun::ui {

std::string_view stylesheet();
std::string_view script();

}  // namespace amlrun::ui
