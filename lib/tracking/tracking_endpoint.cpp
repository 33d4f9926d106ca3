#include "lib/tracking/tracking_endpoint.hpp"

#include <fmt/format.h>

#include <charconv>

#include "lib/tracking/errors.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::tracking {

using nlohmann::json;

void mlflow_error_body(server::Response& response, int status, const std::string& code,
                       const std::string& message) {
  response.status = status;
  response.content_type = "application/json";
  response.body = json{{"error_code", code}, {"message", message}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

namespace {

// Every route may start with /rank/<r> (the URI each rank was given).
constexpr const char* k_rank = "(?:/rank/([0-9]{1,7}))?";

int rank_of(const server::Request& request) {
  const std::string& text = request.captures.empty() ? "" : request.captures[0];
  if (text.empty()) return 0;
  int rank = 0;
  std::from_chars(text.data(), text.data() + text.size(), rank);
  return rank;
}

json parse_body(const server::Request& request) {
  if (request.body.empty()) return json::object();
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    throw TrackingError(400, "MALFORMED_REQUEST",
                        "Malformed request: the body is not a JSON object");
  }
  return body;
}

// GET requests carry their fields in the query.
json query_object(const server::Request& request) {
  json object = json::object();
  for (const auto& [name, value] : request.query) {
    if (name == "experiment_ids") {
      object[name].push_back(value);
    } else {
      object[name] = value;
    }
  }
  return object;
}

void answer(server::Response& response, const json& body) {
  response.status = 200;
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Runs a handler, turning MLflow's errors into their answers.
server::Handler mlflow(std::function<json(server::Request&)> handler) {
  return [handler = std::move(handler)](server::Request& request, server::Response& response) {
    try {
      answer(response, handler(request));
    } catch (const TrackingError& error) {
      mlflow_error_body(response, error.status(), error.code(), error.what());
    }
  };
}

}  // namespace

void add_mlflow_routes(server::HttpServer& server, TrackingService& service,
                       const EndpointOptions& options) {
  auto api = [](const char* path) { return fmt::format("{}/api/2\\.0/mlflow/{}", k_rank, path); };
  std::size_t json_limit = options.max_json_bytes;
  auto post = [&](const char* path, std::function<json(server::Request&)> handler) {
    server.route("POST", api(path), mlflow(std::move(handler)), server::BodyMode::buffered,
                 json_limit);
  };
  auto get = [&](const char* path, std::function<json(server::Request&)> handler) {
    server.route("GET", api(path), mlflow(std::move(handler)), server::BodyMode::buffered,
                 json_limit);
  };
  TrackingService* s = &service;

  get("experiments/get", [s](server::Request& request) {
    return s->get_experiment(request.query_value("experiment_id"));
  });
  get("experiments/get-by-name", [s](server::Request& request) {
    return s->get_experiment_by_name(request.query_value("experiment_name"));
  });
  post("experiments/create",
       [s](server::Request& request) { return s->create_experiment(parse_body(request)); });
  post("experiments/search",
       [s](server::Request& request) { return s->search_experiments(parse_body(request)); });
  get("experiments/search",
      [s](server::Request& request) { return s->search_experiments(query_object(request)); });
  post("runs/create", [s](server::Request& request) { return s->create_run(parse_body(request)); });
  get("runs/get", [s](server::Request& request) {
    std::string id = request.query_value("run_id", request.query_value("run_uuid"));
    return s->get_run(id);
  });
  post("runs/update", [s](server::Request& request) { return s->update_run(parse_body(request)); });
  post("runs/search",
       [s](server::Request& request) { return s->search_runs(parse_body(request)); });
  post("runs/log-metric", [s](server::Request& request) {
    return s->log_metric(parse_body(request), rank_of(request));
  });
  post("runs/log-parameter",
       [s](server::Request& request) { return s->log_param(parse_body(request)); });
  post("runs/set-tag", [s](server::Request& request) { return s->set_tag(parse_body(request)); });
  post("runs/delete-tag",
       [s](server::Request& request) { return s->delete_tag(parse_body(request)); });
  post("runs/log-batch", [s](server::Request& request) {
    return s->log_batch(parse_body(request), rank_of(request));
  });

  // MLflow 3's logged models (log_model); {model_id} is captures[1].
  post("runs/outputs",
       [s](server::Request& request) { return s->log_outputs(parse_body(request)); });
  post("logged-models",
       [s](server::Request& request) { return s->create_logged_model(parse_body(request)); });
  post("logged-models/search", [s](server::Request& request) {
    json body = parse_body(request);
    return s->with_models([&](LoggedModels& models) { return models.search(body); });
  });
  auto model_route = [&](const char* method, const char* path,
                         std::function<json(LoggedModels&, server::Request&)> handler) {
    server.route(
        method, api(path), mlflow([s, handler](server::Request& request) {
          return s->with_models([&](LoggedModels& models) { return handler(models, request); });
        }),
        server::BodyMode::buffered, json_limit);
  };
  constexpr const char* k_model = "logged-models/([^/]+)";
  model_route("GET", k_model, [](LoggedModels& models, server::Request& request) {
    return json{{"model", logged_model_json(models.get(request.captures.at(1)))}};
  });
  model_route("PATCH", k_model, [](LoggedModels& models, server::Request& request) {
    json body = parse_body(request);
    return json{{"model", logged_model_json(models.finalize(request.captures.at(1), body))}};
  });
  model_route("PATCH", "logged-models/([^/]+)/tags",
              [](LoggedModels& models, server::Request& request) {
                models.set_tags(request.captures.at(1), parse_body(request));
                return json::object();
              });
  model_route("DELETE", "logged-models/([^/]+)/tags/(.+)",
              [](LoggedModels& models, server::Request& request) {
                models.delete_tag(request.captures.at(1), request.captures.at(2));
                return json::object();
              });
  model_route("POST", "logged-models/([^/]+)/params",
              [](LoggedModels& models, server::Request& request) {
                models.log_params(request.captures.at(1), parse_body(request));
                return json::object();
              });

  // mlflow-artifacts: <base>/api/2.0/mlflow-artifacts/artifacts/<run id>/outputs/<path>
  std::string artifacts = fmt::format("{}/api/2\\.0/mlflow-artifacts/artifacts", k_rank);
  server.route("PUT", artifacts + "/(.+)", mlflow([s](server::Request& request) {
                 s->upload_artifact(request.captures.at(1), request.read_body);
                 return json::object();
               }),
               server::BodyMode::streaming, options.max_artifact_bytes);
  server.route("GET", artifacts + "/(.+)",
               [s](server::Request& request, server::Response& response) {
                 try {
                   response.file =
                       std::make_shared<util::UniqueFd>(s->open_artifact(request.captures.at(1)));
                   response.content_type = "application/octet-stream";
                 } catch (const TrackingError& error) {
                   mlflow_error_body(response, error.status(), error.code(), error.what());
                 }
               });
  server.route("GET", artifacts, mlflow([s](server::Request& request) {
                 return s->list_artifacts(request.query_value("path"));
               }));
}

std::string python_shim_notice(const json& body, int rank) {
  auto folder = body.find("real_azureml_core");
  if (body.size() != 1 || folder == body.end() || !folder->is_string()) {
    throw TrackingError(400, "INVALID_PARAMETER_VALUE",
                        "a python-shim notice is {\"real_azureml_core\": \"<folder>\"}");
  }
  return fmt::format(
      "azureml: rank {} uses the azureml-core installed in its environment ({}), not amlrun's "
      "azureml shim",
      rank, util::printable(folder->get<std::string>(), 300));
}

TrackingEndpoint::TrackingEndpoint(const workspace::Workspace& workspace, TrackingConfig config,
                                   EndpointOptions options)
    : TrackingEndpoint(store_run_records(workspace), std::move(config), std::move(options)) {}

TrackingEndpoint::TrackingEndpoint(std::unique_ptr<RunRecords> records, TrackingConfig config,
                                   EndpointOptions options)
    : m_options(std::move(options)),
      m_on_notice(config.on_notice),
      m_service(std::move(records), std::move(config)),
      m_server([this] {
        server::ServerOptions server_options;
        server_options.address = m_options.bind_address;
        server_options.threads = m_options.threads;
        server_options.bearer_token = m_options.token;
        server_options.error_body = mlflow_error_body;
        return server_options;
      }()) {
  add_mlflow_routes(m_server, m_service, m_options);
  // Said once per run: every rank of a run has the same environment.
  m_server.route("POST", fmt::format("{}/api/amlrun/python-shim", k_rank),
                 mlflow([this](server::Request& request) {
                   std::string line = python_shim_notice(parse_body(request), rank_of(request));
                   if (m_on_notice && !m_shim_notice_logged.exchange(true)) m_on_notice(line);
                   return json::object();
                 }),
                 server::BodyMode::buffered, 64 << 10);
}

TrackingEndpoint::~TrackingEndpoint() {
  stop();
}

void TrackingEndpoint::start() {
  m_server.start();
}

void TrackingEndpoint::stop() {
  m_server.stop();
  m_service.end_open_runs();
}

std::string TrackingEndpoint::base_uri() const {
  return fmt::format("http://{}:{}", m_options.public_host, m_server.port());
}

std::string TrackingEndpoint::rank_uri(int rank) const {
  return fmt::format("{}/rank/{}", base_uri(), rank);
}

}  // namespace amlrun::tracking
