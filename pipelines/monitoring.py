"""The monitoring pipeline: drift check -> (if drift) trigger the training pipeline, within a cooldown."""

from typing import Any

from kfp import dsl

from components.kfp_components import build
from pipelines.config import PipelineConfig

PIPELINE_NAME = "aidetect-monitoring"


def build_monitoring_pipeline(cfg: PipelineConfig) -> Any:
    """The monitoring pipeline with components in ``cfg.images.train_image`` and defaults from ``cfg``."""
    comps = build(cfg.images.train_image)
    m = cfg.monitoring
    t = cfg.training

    @dsl.pipeline(name=PIPELINE_NAME, description="Check drift on the inference log; retrain on drift.")
    def monitoring(
        data_uri: str,
        model_name: str = m.model_name,
        alias: str = m.alias,
        since: str = m.since,
        inference_log: str = m.inference_log,
        mlflow_uri: str = t.mlflow_uri,
        kfp_host: str = m.kfp_host,
        preset: str = t.preset,
        gate_config: str = t.gate_config,
        datasets_root: str = t.datasets_root,
    ) -> None:
        check = comps.drift_check(
            model_name=model_name,
            alias=alias,
            since=since,
            inference_log=inference_log,
            mlflow_uri=mlflow_uri,
        ).set_display_name("drift-check")
        check.set_caching_options(False)
        with dsl.If(check.outputs["Output"] == True, name="drift-found"):  # noqa: E712 (KFP condition)
            trigger = comps.trigger_retrain(
                verdict=check.outputs["verdict"],
                model_name=model_name,
                kfp_host=kfp_host,
                data_uri=data_uri,
                preset=preset,
                gate_config=gate_config,
                mlflow_uri=mlflow_uri,
                datasets_root=datasets_root,
            ).set_display_name("trigger-retrain")
            trigger.set_caching_options(False)

    return monitoring
