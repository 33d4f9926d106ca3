#pragma once
// The MLflow tracking endpoint of one run: the REST API 2.0 calls the
// MLflow Python client makes (experiments, runs, metrics, params, tags,
// log-batch) and the mlflow-artifacts upload / download / list, served by
// server::HttpServer over a TrackingService. Every process of the run gets
// its own base URI, <endpoint>/rank/<r>, so the endpoint knows which rank
// logged without anything from the unmodified client.
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/server/http_server.hpp"
#include "lib/tracking/tracking_service.hpp"

namespace amlrun::tracking {

struct EndpointOptions {
  std::string bind_address = "127.0.0.1";
  // The host name or address the ranks reach it at (the URIs they get).
  std::string public_host = "127.0.0.1";
  std::string token;  // MLFLOW_TRACKING_TOKEN; required on every request
  std::size_t threads = 8;
  std::size_t max_json_bytes = 4 << 20;         // a log-batch of 1000 metrics is ~100 KiB
  std::size_t max_artifact_bytes = 4ull << 30;  // one file's upload
};

class TrackingEndpoint {
 public:
  TrackingEndpoint(const workspace::Workspace& workspace, TrackingConfig config,
                   EndpointOptions options);
  TrackingEndpoint(std::unique_ptr<RunRecords> records, TrackingConfig config,
                   EndpointOptions options);
  ~TrackingEndpoint();

  // Starts serving; throws util::InfraError when it cannot listen.
  void start();
  // Stops accepting, answers what is in flight, ends nested runs left open.
  void stop();

  int port() const { return m_server.port(); }
  // http://host:port/rank/<rank>: MLFLOW_TRACKING_URI of that rank.
  std::string rank_uri(int rank) const;
  // http://host:port: what a rank's URI is made from (the Slurm ranks add
  // /rank/<r> themselves).
  std::string base_uri() const;

 private:
  EndpointOptions m_options;
  std::function<void(const std::string&)> m_on_notice;  // TrackingConfig::on_notice
  std::atomic<bool> m_shim_notice_logged{false};
  TrackingService m_service;
  server::HttpServer m_server;
};

// Registers the MLflow routes of `service` on `server` (also used by tests
// that serve a service directly).
void add_mlflow_routes(server::HttpServer& server, TrackingService& service,
                       const EndpointOptions& options);

// amlrun's azureml shim says (POST <rank uri>/api/amlrun/python-shim,
// {"real_azureml_core": "<folder>"}) that the job's environment has the real
// azureml-core, which it uses instead: the line for the run's system log.
// TrackingError (400) for any other body. The folder comes from the job, so
// it is cut and its control characters escaped.
std::string python_shim_notice(const nlohmann::json& body, int rank);

// MLflow's error body: {"error_code": code, "message": message}.
void mlflow_error_body(server::Response& response, int status, const std::string& code,
                       const std::string& message);

}  // namespace amlrun::tracking
