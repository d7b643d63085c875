"""Deploy one stage of ImageLabeller end to end: `scripts/deploy <stage> [--dry-run]`.

docs/DEPLOY.md says what each step creates and how to roll back. The modules:

- `settings`: what a stage is, from .chalice/config.json and tools/deploy/stages.json;
- `plan`: the steps of a deploy, in the original's order, as data;
- `actions`: what one step does, described (dry run) or done (boto3, subprocesses);
- `cloudformation`: create or update a stack and wait for it;
- `artifacts`: the artifacts bucket and the upload of the Lambda package;
- `package_models`: no model in the Lambda package (the model layer has it);
- `model_layer`: the model layer (onnxruntime and the stage's model) and its stack;
- `migration`: the migrate step, the stage's tables moved to tenants (issue 15);
- `system_tests`: the system-tests step, with an API key made for it and revoked after;
- `intrinsics`, `chalice_stage`, `configure`: `scripts/configure-stage`, which makes
  `chalice deploy --stage <stage>` work once the stacks exist;
- `cli`: the command line.
"""
