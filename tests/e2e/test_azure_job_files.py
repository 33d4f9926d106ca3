"""Azure ML command-job files end to end (issue 18): a TensorFlow-distribution
job whose every process reads and checks TF_CONFIG, environment files, and
outputs with a datastore path, on the local target with the real binary."""
import json
import os
import unittest

from amlrun_e2e import PYTHON, ProjectTest
from tensorflow_e2e import (MULTI_WORKER_MIRRORED, TF_CONFIG_CHECK, read_rank_reports,
                            tensorflow_python)


class TensorflowDistributionTest(ProjectTest):
    def test_two_workers_each_get_tf_config(self):
        self.project.write("src/check_tf_config.py", TF_CONFIG_CHECK)
        result = self.submit("""
            code: src
            command: %s check_tf_config.py 2
            distribution:
              type: tensorflow
              worker_count: 2
        """ % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        reports, configs = read_rank_reports(self, self.project.outputs(run_id), 2)
        self.assertNotIn("ps", configs[0]["cluster"])
        self.assertEqual([c["task"] for c in configs],
                         [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}])
        addresses = configs[0]["cluster"]["worker"]
        self.assertEqual([a.rsplit(":", 1)[0] for a in addresses], ["127.0.0.1", "127.0.0.1"])
        ports = [int(a.rsplit(":", 1)[1]) for a in addresses]
        master_port = int(reports[0]["MASTER_PORT"])
        self.assertNotIn(master_port, ports)
        self.assertEqual(len(set(ports)), 2)
        for port in ports:
            self.assertTrue(20000 <= port < 60000, port)
        self.assertEqual(reports[0]["greetings"], ["worker 1"])
        self.assertEqual(self.project.show(run_id)["state"], "Completed")

    def test_parameter_servers_follow_the_workers(self):
        self.project.write("src/check_tf_config.py", TF_CONFIG_CHECK)
        result = self.submit("""
            code: src
            command: %s check_tf_config.py 2
            distribution: {type: tensorflow, worker_count: 2, parameter_server_count: 1}
        """ % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        reports, configs = read_rank_reports(self, self.project.outputs(run_id), 3)
        self.assertEqual(len(configs[0]["cluster"]["ps"]), 1)
        self.assertEqual(configs[2]["task"], {"type": "ps", "index": 0})
        self.assertEqual(sorted(reports[0]["greetings"]), ["ps 0", "worker 1"])

    def test_a_wrong_tf_config_fails_the_run(self):
        # The check itself can fail: expecting 3 workers where there are 2.
        self.project.write("src/check_tf_config.py", TF_CONFIG_CHECK)
        result = self.submit("""
            code: src
            command: %s check_tf_config.py 3
            distribution: {type: tensorflow, worker_count: 2}
        """ % PYTHON)
        self.assertEqual(result.returncode, 1, result.stderr)
        # The first rank to fail ends the other, which may not get to print.
        logs = ""
        for rank in (0, 1):
            with open(os.path.join(self.project.logs(self.last_run()), "user_logs",
                                   "std_log_rank_%d.txt" % rank)) as f:
                logs += f.read()
        self.assertIn("TF_CONFIG problems: ['2 workers, expected 3'", logs)


class RealTensorflowTest(ProjectTest):
    """Opt-in (AMLRUN_TENSORFLOW_TESTS=1): tensorflow-cpu comes from PyPI."""

    def test_multi_worker_mirrored_strategy_all_reduces_over_two_workers(self):
        python = tensorflow_python()
        if python is None:
            self.skipTest("set AMLRUN_TENSORFLOW_TESTS=1 to install tensorflow-cpu from PyPI "
                          "into a venv and run a real MultiWorkerMirroredStrategy job")
        self.project.write("src/mwms.py", MULTI_WORKER_MIRRORED)
        result = self.submit("""
            code: src
            command: %s mwms.py
            environment_variables:
              TF_CPP_MIN_LOG_LEVEL: "2"
            distribution:
              type: tensorflow
              worker_count: 2
            limits:
              timeout: 300
        """ % python, timeout=400)
        self.assertEqual(result.returncode, 0, result.stderr)
        outputs = self.project.outputs(self.last_run())
        for worker in (0, 1):
            with open(os.path.join(outputs, "mwms_worker_%d.json" % worker)) as f:
                self.assertEqual(json.load(f), {"sum": 3.0, "replicas": 2})


class EnvironmentFileTest(ProjectTest):
    def setUp(self):
        super().setUp()
        self.project.write("environments/env.yml", """
            $schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
            name: plain-python
            version: 1
            description: the host's python
            image: python:3.11-slim
            os_type: linux
        """)

    def test_a_job_with_an_environment_file_runs_and_hashes_as_inline(self):
        self.project.write("src/hello.py", "print('hello from the environment file job')\n")
        result = self.submit("""
            code: src
            command: %s hello.py
            environment: file:./environments/env.yml
        """ % PYTHON, "--stream")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "hello from the environment file job\n")
        from_file = self.project.show(self.last_run())["environment"]["hash"]
        result = self.submit("""
            code: src
            command: %s hello.py
            environment:
              image: python:3.11-slim
        """ % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.project.show(self.last_run())["environment"]["hash"], from_file)

    def test_an_error_in_the_environment_file_names_its_line(self):
        self.project.write("environments/env.yml", "name: e\nimage: python:3.11\nimgae: x\n")
        self.project.write("job.yml", "command: echo hi\nenvironment: environments/env.yml\n")
        result = self.project.amlrun("validate", "job.yml")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         "amlrun: error: environments/env.yml:3:1: imgae: unknown key 'imgae' "
                         "(did you mean 'image'?)\n"
                         "    3 | imgae: x\n"
                         "      | ^\n"
                         "1 error in job.yml\n")
        self.assertEqual(self.project.run_ids(), [])


class DatastoreOutputTest(ProjectTest):
    def test_a_datastore_output_path_warns_and_the_output_stays_in_the_run(self):
        result = self.submit("""
            command: echo model > ${{outputs.model}}/model.txt
            outputs:
              model:
                type: uri_folder
                path: azureml://datastores/workspaceblobstore/paths/models/
                mode: upload
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        warning = ("job.yml:6:11: warning: outputs.model.path: "
                   "'azureml://datastores/workspaceblobstore/paths/models/' is an Azure ML "
                   "datastore, which amlrun does not upload to; the output stays in the run "
                   "(outputs/model) and amlrun download fetches it\n")
        self.assertIn(warning, result.stderr)
        self.assertEqual(result.stderr.count("warning:"), 1)
        run_id = self.last_run()
        with open(os.path.join(self.project.outputs(run_id), "model", "model.txt")) as f:
            self.assertEqual(f.read(), "model\n")


if __name__ == "__main__":
    unittest.main()
