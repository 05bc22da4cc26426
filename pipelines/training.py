"""Training pipeline: ingest -> validate -> train -> evaluate -> gate -> (if passed) optimize -> register."""

from typing import Any

from kfp import dsl
from kfp import kubernetes as kfp_k8s

from components.kfp_components import build
from pipelines.config import PipelineConfig

PIPELINE_NAME = "aidetect-training"


def _place_train_step(
    task: dsl.PipelineTask, cfg: PipelineConfig, node_selector: Any, tolerations: Any
) -> None:
    """GPU request and scheduling of the train step: resources from config, placement from parameters."""
    res = cfg.train_resources
    if res.accelerator_type and res.accelerator_limit > 0:
        task.set_accelerator_type(res.accelerator_type).set_accelerator_limit(res.accelerator_limit)
    if res.cpu_request:
        task.set_cpu_request(res.cpu_request)
    if res.memory_request:
        task.set_memory_request(res.memory_request)
    if res.memory_limit:
        task.set_memory_limit(res.memory_limit)
    kfp_k8s.add_node_selector_json(task, node_selector)
    kfp_k8s.add_toleration_json(task, tolerations)


def build_training_pipeline(cfg: PipelineConfig) -> Any:
    """The training pipeline with components in ``cfg.images.train_image`` and defaults from ``cfg``."""
    comps = build(cfg.images.train_image)
    d = cfg.training

    @dsl.pipeline(
        name=PIPELINE_NAME, description="Train, evaluate, gate, optimise and register the detector."
    )
    def training(
        data_uri: str,
        preset: str = d.preset,
        gate_config: str = d.gate_config,
        mlflow_uri: str = d.mlflow_uri,
        model_name: str = d.model_name,
        datasets_root: str = d.datasets_root,
        node_selector: dict = d.node_selector,
        tolerations: list = d.tolerations,
        init_from: str = "",
    ) -> None:
        ingest = comps.ingest(data_uri=data_uri, datasets_root=datasets_root).set_display_name("ingest")
        ingest.set_caching_options(False)  # the same URI may hold new data
        validate = comps.validate(dataset=ingest.outputs["dataset"]).set_display_name("validate")
        dataset = validate.outputs["validated"]
        train = comps.train(
            dataset=dataset, preset=preset, mlflow_uri=mlflow_uri, init_from=init_from
        ).set_display_name("train")
        _place_train_step(train, cfg, node_selector, tolerations)
        evaluate = comps.evaluate(
            dataset=dataset,
            model=train.outputs["model"],
            gate_config=gate_config,
            model_name=model_name,
            mlflow_uri=mlflow_uri,
        ).set_display_name("evaluate")
        evaluate.set_caching_options(False)  # the champion it is compared with can change
        evaluated = evaluate.outputs["evaluated"]
        gate = comps.gate(evaluated=evaluated).set_display_name("gate")
        with dsl.If(gate.outputs["Output"] == True, name="gate-passed"):  # noqa: E712 (KFP condition)
            optimize = comps.optimize(evaluated=evaluated, dataset=dataset).set_display_name("optimize")
            register = comps.register(
                dataset=dataset,
                model=train.outputs["model"],
                evaluated=evaluated,
                bundle=optimize.outputs["bundle"],
                model_name=model_name,
                gate_config=gate_config,
                mlflow_uri=mlflow_uri,
            ).set_display_name("register")
            register.set_caching_options(False)

    return training
