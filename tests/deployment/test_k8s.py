"""deployment/k8s/tfjob.yaml and deployment/Dockerfile.train: each replica of the TFJob, given the
TF_CONFIG the training operator writes, takes the intended role in the trainer."""
import ast
import json
import pathlib
import re

import pytest
import yaml

import train_ssd_network
from deployment import cluster

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFEST = ROOT / 'deployment' / 'k8s' / 'tfjob.yaml'
DOCKERFILE = ROOT / 'deployment' / 'Dockerfile.train'
DEFAULT_PORT = 2222  # the operator's default tfjob-port


def _tfjob():
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    jobs = [d for d in documents if d['kind'] == 'TFJob']
    assert len(jobs) == 1 and jobs[0]['apiVersion'] == 'kubeflow.org/v1'
    return jobs[0], documents


def _container(spec):
    containers = spec['template']['spec']['containers']
    assert [c['name'] for c in containers] == ['tensorflow']
    return containers[0]


def _port(container):
    ports = {p['name']: p['containerPort'] for p in container.get('ports', [])}
    return ports.get('tfjob-port', DEFAULT_PORT)


def _replicas(job):
    """(replica type, index, container, TF_CONFIG) of every pod, as the operator generates it:
    addresses <job>-<type>-<i>.<namespace>.svc:<port>, the evaluator outside the cluster."""
    name = job['metadata']['name']
    namespace = job['metadata'].get('namespace', 'default')
    specs = job['spec']['tfReplicaSpecs']
    jobs = {rtype.lower(): ['%s-%s-%d.%s.svc:%d' % (name, rtype.lower(), i, namespace,
                                                    _port(_container(spec)))
                            for i in range(spec['replicas'])]
            for rtype, spec in specs.items() if rtype != 'Evaluator'}
    for rtype, spec in specs.items():
        for index in range(spec['replicas']):
            config = {'cluster': jobs, 'task': {'type': rtype.lower(), 'index': index},
                      'environment': 'cloud'}
            yield rtype, index, _container(spec), json.dumps(config)


def _args(container):
    """The container's args with Kubernetes' $(VAR) expansion from its env."""
    env = {item['name']: item['value'] for item in container.get('env', [])}
    return [re.sub(r'\$\((\w+)\)', lambda m: env[m.group(1)], arg) for arg in container['args']]


def test_every_replica_takes_its_role_from_tf_config():
    job, _ = _tfjob()
    roles = {}
    for rtype, index, container, tf_config in _replicas(job):
        args = train_ssd_network.build_parser().parse_args(_args(container))
        environ = {'TF_CONFIG': tf_config}
        found = train_ssd_network.cluster_of(args, environ)
        config = train_ssd_network.deployment_config(args, environ)
        roles[(rtype, index)] = found
        if rtype in ('Chief', 'Worker'):
            gpus = int(container['resources']['limits']['nvidia.com/gpu'])
            assert (config.num_clones, config.clone_on_cpu) == (gpus, False)
            assert config.num_replicas == found.num_replicas == 4
            assert config.num_ps_tasks == found.num_ps == 2
            assert config.sync_replicas and config.replicas_to_aggregate == 4
            assert config.replica_id == found.replica_id
            assert config.worker_device() == '/job:%s/task:%d' % (rtype.lower(), index)
        else:
            assert config is None
        assert _port(container) == DEFAULT_PORT or rtype == 'Evaluator'
    assert roles[('Chief', 0)].is_chief and roles[('Chief', 0)].replica_id == 0
    assert [roles[('Worker', i)].replica_id for i in range(3)] == [1, 2, 3]
    assert not any(roles[('Worker', i)].is_chief for i in range(3))
    assert [roles[('PS', i)].task_type for i in range(2)] == [cluster.PS, cluster.PS]
    assert roles[('Evaluator', 0)].task_type == cluster.EVALUATOR
    assert sum(found.is_chief for found in roles.values()) == 1


def test_replicas_share_the_records_and_train_dir_volumes():
    job, documents = _tfjob()
    claims = {d['metadata']['name']: d for d in documents if d['kind'] == 'PersistentVolumeClaim'}
    assert 'ReadWriteMany' in claims['ssd-train']['spec']['accessModes']
    for rtype, spec in job['spec']['tfReplicaSpecs'].items():
        container = _container(spec)
        mounts = {m['name']: m['mountPath'] for m in container['volumeMounts']}
        volumes = {v['name']: v['persistentVolumeClaim']['claimName']
                   for v in spec['template']['spec']['volumes']}
        assert set(volumes.values()) <= set(claims), rtype
        args = train_ssd_network.build_parser().parse_args(_args(container))
        assert args.train_dir.startswith(mounts['train'] + '/'), rtype
        assert args.dataset_dir.startswith(mounts['records'] + '/'), rtype
        assert spec['restartPolicy'] == 'OnFailure', rtype


def _first_party_imports(path, packages):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split('.')[0])
    return names & packages


def test_the_image_holds_every_module_the_trainer_and_evaluator_import():
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["python", "train_ssd_network.py"]' in text
    copied = set(re.findall(r'^COPY (\S+?)/? ', text, re.M)) | {
        name for line in re.findall(r'^COPY (.+) \./$', text, re.M) for name in line.split()}
    packages = {p.name for p in ROOT.iterdir() if (p / '__init__.py').exists()}
    todo = [ROOT / 'train_ssd_network.py', ROOT / 'eval_ssd_network.py']
    needed = set()
    while todo:
        path = todo.pop()
        for package in _first_party_imports(path, packages) - needed:
            needed.add(package)
            todo.extend((ROOT / package).rglob('*.py'))
    assert {'train_ssd_network.py', 'eval_ssd_network.py'} <= copied
    assert needed <= copied, sorted(needed - copied)


def test_only_the_jobs_own_pods_reach_its_tasks():
    """TensorFlow's servers have no authentication: a NetworkPolicy admits to the job's pods
    (the operator's label) nothing but the job's pods, on the tasks' port."""
    job, documents = _tfjob()
    policies = [d for d in documents if d['kind'] == 'NetworkPolicy']
    assert len(policies) == 1
    spec = policies[0]['spec']
    own = {'training.kubeflow.org/job-name': job['metadata']['name']}
    assert spec['podSelector'] == {'matchLabels': own}
    assert spec['policyTypes'] == ['Ingress']
    assert spec['ingress'] == [{'from': [{'podSelector': {'matchLabels': own}}],
                                'ports': [{'protocol': 'TCP', 'port': DEFAULT_PORT}]}]
    ports = {_port(container) for rtype, _, container, _ in _replicas(job) if rtype != 'Evaluator'}
    assert ports == {DEFAULT_PORT}


@pytest.mark.parametrize('word', ['--sync_replicas', '--ps_strategy=size'])
def test_manifest_uses_the_cluster_flags(word):
    job, _ = _tfjob()
    assert word in _args(_container(job['spec']['tfReplicaSpecs']['Chief']))
