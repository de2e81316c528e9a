#include "broadcaster/health.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace broadcaster {

void health::beat(std::string_view loop) {
  std::lock_guard lock(mutex_);
  auto it = beats_.find(loop);
  if (it == beats_.end()) {
    beats_.emplace(std::string(loop), clock::now());
  } else {
    it->second = clock::now();
  }
}

void health::retire(std::string_view loop) {
  std::lock_guard lock(mutex_);
  if (auto it = beats_.find(loop); it != beats_.end()) beats_.erase(it);
}

void health::set_problem(std::string_view component, std::string text) {
  std::lock_guard lock(mutex_);
  auto it = problems_.find(component);
  if (it == problems_.end()) {
    problems_.emplace(std::string(component), standing_problem{std::move(text), clock::now()});
  } else {
    it->second.text = std::move(text);  // keeps `since`: the problem is the same outage
  }
}

void health::clear_problem(std::string_view component) {
  std::lock_guard lock(mutex_);
  if (auto it = problems_.find(component); it != problems_.end()) problems_.erase(it);
}

std::string health::problem(std::chrono::milliseconds stall_after, std::chrono::milliseconds problem_grace) const {
  std::string out;
  auto add = [&](const std::string& text) { out += out.empty() ? text : "; " + text; };
  if (!ready_) add("starting");
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  for (const auto& [loop, last] : beats_) {
    const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - last);
    if (silent > stall_after) add(fmt::format("{} loop silent for {} ms", loop, silent.count()));
  }
  for (const auto& [component, p] : problems_) {
    if (now - p.since >= problem_grace) add(fmt::format("{}: {}", component, p.text));
  }
  return out;
}

bool health::alive(std::chrono::milliseconds stall_after) const {
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  for (const auto& [loop, last] : beats_) {
    if (now - last > stall_after) return false;
  }
  return true;
}

bool wait_alive(common::process_signals& signals, health& status, std::string_view loop,
                std::chrono::milliseconds duration) {
  const auto until = health::clock::now() + duration;
  for (;;) {
    status.beat(loop);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - health::clock::now());
    if (left.count() <= 0) return signals.stop_requested();
    if (signals.wait_for(std::min<std::chrono::milliseconds>(left, std::chrono::seconds(1)))) return true;
  }
}

}  // namespace broadcaster
