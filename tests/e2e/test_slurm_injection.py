"""Nothing a job file says reaches a shell or sbatch's directives: job names,
arguments and variables holding quotes, $(), backticks, newlines and commas
arrive verbatim (or sanitised, for the job name), run nothing, and drop no
scheduler option. Runs on the real test cluster."""
import json
import os
import unittest

from slurm_e2e import SlurmTest, read_json, read_text, slurm


class InjectionTest(SlurmTest):
    def setUp(self):
        super().setUp()
        self.markers = [os.path.join(self.project.root, "pwned%d" % i) for i in range(4)]
        # Everything the issue names, in one value.
        self.hostile = ("it's \"q\" $(touch %s) `touch %s`; touch %s\n"
                        "#SBATCH --partition=evil\n--time=1,a=b,--export=ALL %%j $HOME ${PATH} \\ end"
                        % tuple(self.markers[:3]))

    def assertNothingRan(self):
        for marker in self.markers:
            self.assertFalse(os.path.exists(marker), marker + " was created")

    def yaml(self, value):
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar

    def test_hostile_job_name_is_sanitised_and_drops_no_directive(self):
        self.project.write("src/where.sh", "hostname > outputs/host_$RANK.txt\n")
        result = self.submit("""
            code: src
            command: bash where.sh
            display_name: %s
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: pytorch
              process_count_per_instance: 1
            limits:
              timeout: 30
        """ % self.yaml(self.hostile))
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        record = self.project.show(run_id)
        job_id = record["target"]["job_id"]
        fields = slurm("squeue", "--noheader", "--states=all", "--jobs=" + job_id,
                       "--Format=Name:|,NumNodes:|,TimeLimit:|,Partition:|,Comment:").stdout.strip()
        name, nodes, limit, partition, comment = fields.split("|")
        self.assertEqual(name.strip(), record["target"]["job_name"])
        self.assertRegex(name.strip(), r"^[A-Za-z0-9._-]{1,64}$")
        self.assertEqual(nodes.strip(), "2")
        self.assertEqual(limit.strip(), "2:00")  # 30 s + 1 s grace + 60 s → 2 minutes
        self.assertEqual(partition.strip(), "debug")
        self.assertEqual(comment.strip(), record["target"]["comment"])
        hosts = sorted(read_text(os.path.join(self.project.outputs(run_id), "host_%d.txt" % r))
                       for r in (0, 1))
        self.assertEqual(hosts, ["n1\n", "n2\n"])
        script = read_text(os.path.join(self.project.logs(run_id), "system", "job.sbatch"))
        self.assertNotIn("touch", script)
        self.assertNotIn("#SBATCH", script)
        self.assertNothingRan()

    def test_hostile_arguments_reach_the_program_verbatim(self):
        result = self.submit("""
            code: src
            command: >-
              printf '[%%s]\\n' ${{inputs.text}} "${{inputs.text}}" '${{inputs.text}}'
              && touch %s
            inputs:
              text: %s
            compute: cluster
        """ % (self.markers[3] + "-expected", self.yaml(self.hostile)))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, ("[%s]\n" % self.hostile) * 3)
        self.assertTrue(os.path.exists(self.markers[3] + "-expected"))  # the command itself ran
        self.assertNothingRan()

    def test_hostile_script_params_reach_the_estimator_verbatim(self):
        self.project.write("src/args.py", """
            import json, sys
            print(json.dumps(sys.argv[1:]))
        """)
        result = self.submit("""
            source_directory: src
            entry_script: args.py
            script_params:
              --text: %s
              --flag:
            compute_target: cluster
        """ % self.yaml(self.hostile))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), ["--text", self.hostile, "--flag"])
        self.assertNothingRan()

    def test_hostile_environment_variables_arrive_verbatim(self):
        self.project.write("src/env.py", """
            import json, os
            with open("outputs/env.json", "w") as f:
                json.dump({k: os.environ.get(k) for k in ["HOSTILE", "COMMAS", "EMPTY"]}, f)
        """)
        result = self.submit("""
            code: src
            command: python3 env.py
            environment_variables:
              HOSTILE: %s
              COMMAS: "A=1,B=2,C"
              EMPTY: ""
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: mpi
              process_count_per_instance: 1
        """ % self.yaml(self.hostile))
        self.assertEqual(result.returncode, 0, result.stderr)
        env = read_json(os.path.join(self.project.outputs(self.last_run()), "env.json"))
        self.assertEqual(env, {"HOSTILE": self.hostile, "COMMAS": "A=1,B=2,C", "EMPTY": ""})
        self.assertNothingRan()


if __name__ == "__main__":
    unittest.main()
