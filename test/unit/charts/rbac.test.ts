import { expect } from 'chai';
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
} from '@kubernetes/client-node';
import {
  ciValuesFiles,
  findObject,
  FULLNAME,
  objectsOfKind,
  RELEASE_NAMESPACE,
  renderChart,
  type RenderedObject,
} from './chart-render.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;
const WEBHOOK_CONFIGURATION_NAME = `${FULLNAME}-${RELEASE_NAMESPACE}`;
const SECRET_NAME = `${FULLNAME}-webhook-tls`;

/** Returns the rules that grant anything on `resource` in `apiGroup`. */
function rulesFor(rules: V1PolicyRule[], apiGroup: string, resource: string): V1PolicyRule[] {
  return rules.filter(
    (rule) => rule.apiGroups?.includes(apiGroup) && rule.resources?.includes(resource),
  );
}

/** Returns the verbs granted on `resource`, merged over all rules, sorted. */
function verbsFor(rules: V1PolicyRule[], apiGroup: string, resource: string): string[] {
  const verbs = rulesFor(rules, apiGroup, resource).flatMap((rule) => rule.verbs);
  return [...new Set(verbs)].sort();
}

function clusterRole(objects: RenderedObject[], suffix: string): V1PolicyRule[] {
  return findObject<V1ClusterRole>(objects, 'ClusterRole', suffix).rules!;
}

describe('chart RBAC', function () {
  this.timeout(HELM_TIMEOUT_MS);

  describe('with defaults', function () {
    let objects: RenderedObject[];

    before(async function () {
      objects = await renderChart();
    });

    it('lets the webhook read TrainJobs', function () {
      const rules = clusterRole(objects, '-webhook');
      expect(verbsFor(rules, 'trainer.kubeflow.org', 'trainjobs')).to.deep.equal([
        'get',
        'list',
        'watch',
      ]);
    });

    it('limits the webhook to its own configuration', function () {
      const rules = rulesFor(
        clusterRole(objects, '-webhook'),
        'admissionregistration.k8s.io',
        'mutatingwebhookconfigurations',
      );
      expect(rules).to.have.length(1);
      expect(rules[0]!.resourceNames).to.deep.equal([WEBHOOK_CONFIGURATION_NAME]);
      expect(rules[0]!.verbs).to.deep.equal(['get', 'patch']);
      expect(rules[0]!.verbs).not.to.include.members(['create', 'delete', 'update']);
    });

    it('limits the webhook Secret access by name', function () {
      const role = findObject<V1Role>(objects, 'Role', '-webhook');
      expect(role.metadata!.namespace).to.equal(RELEASE_NAMESPACE);
      const named = role.rules!.filter((rule) => rule.resourceNames !== undefined);
      const unnamed = role.rules!.filter((rule) => rule.resourceNames === undefined);
      expect(named).to.have.length(1);
      expect(named[0]!.resourceNames).to.deep.equal([SECRET_NAME]);
      expect(named[0]!.verbs).to.include.members(['get', 'update']);
      expect(unnamed).to.have.length(1);
      expect(unnamed[0]!.verbs).to.deep.equal(['create']);
      for (const rule of role.rules!) expect(rule.resources).to.deep.equal(['secrets']);
    });

    it('binds the webhook roles to its account', function () {
      const subject = { kind: 'ServiceAccount', name: `${FULLNAME}-webhook` };
      const binding = findObject<V1RoleBinding>(objects, 'RoleBinding', '-webhook');
      expect(binding.subjects).to.deep.equal([{ ...subject, namespace: RELEASE_NAMESPACE }]);
      expect(binding.roleRef.name).to.equal(`${FULLNAME}-webhook`);
      const clusterBinding = findObject<V1ClusterRoleBinding>(
        objects,
        'ClusterRoleBinding',
        '-webhook',
      );
      expect(clusterBinding.subjects).to.deep.equal([
        { ...subject, namespace: RELEASE_NAMESPACE },
      ]);
      expect(clusterBinding.roleRef.name).to.equal(clusterBinding.metadata!.name);
    });

    it('lets the aggregator review tokens and access', function () {
      const rules = clusterRole(objects, '-aggregator');
      expect(verbsFor(rules, 'authentication.k8s.io', 'tokenreviews')).to.deep.equal(['create']);
      expect(verbsFor(rules, 'authorization.k8s.io', 'subjectaccessreviews')).to.deep.equal([
        'create',
      ]);
    });

    it('lets the aggregator read pods', function () {
      const rules = clusterRole(objects, '-aggregator');
      expect(verbsFor(rules, '', 'pods')).to.deep.equal(['get', 'list', 'watch']);
    });

    it('lets the aggregator annotate TrainJobs', function () {
      const rules = clusterRole(objects, '-aggregator');
      expect(verbsFor(rules, 'trainer.kubeflow.org', 'trainjobs')).to.deep.equal([
        'get',
        'list',
        'patch',
        'watch',
      ]);
    });

    it('keeps TrainJob status read-only by default', function () {
      const rules = clusterRole(objects, '-aggregator');
      expect(rulesFor(rules, 'trainer.kubeflow.org', 'trainjobs/status')).to.deep.equal([]);
      expect(rulesFor(rules, 'apiextensions.k8s.io', 'customresourcedefinitions')).to.deep.equal(
        [],
      );
    });

    it('binds the aggregator role to its account', function () {
      const binding = findObject<V1ClusterRoleBinding>(
        objects,
        'ClusterRoleBinding',
        '-aggregator',
      );
      expect(binding.subjects).to.deep.equal([
        { kind: 'ServiceAccount', name: `${FULLNAME}-aggregator`, namespace: RELEASE_NAMESPACE },
      ]);
      expect(binding.roleRef.name).to.equal(binding.metadata!.name);
    });

    it('aggregates the viewer role into view', function () {
      const viewer = findObject<V1ClusterRole>(objects, 'ClusterRole', '-viewer');
      expect(viewer.metadata!.labels).to.include({
        'rbac.authorization.k8s.io/aggregate-to-view': 'true',
      });
      expect(viewer.rules).to.deep.equal([
        {
          apiGroups: ['trainer.kubeflow.org'],
          resources: ['trainjobs'],
          verbs: ['get', 'list', 'watch'],
        },
      ]);
    });
  });

  it('lets the status mirror patch status', async function () {
    const objects = await renderChart({ valuesFiles: ['status-mirror-values.yaml'] });
    const rules = clusterRole(objects, '-aggregator');
    expect(verbsFor(rules, 'trainer.kubeflow.org', 'trainjobs/status')).to.deep.equal(['patch']);
    const crdRules = rulesFor(rules, 'apiextensions.k8s.io', 'customresourcedefinitions');
    expect(crdRules).to.have.length(1);
    expect(crdRules[0]!.resourceNames).to.deep.equal(['trainjobs.trainer.kubeflow.org']);
    expect(crdRules[0]!.verbs).to.deep.equal(['get']);
  });

  for (const file of ['cert-manager-values.yaml', 'provided-certificates-values.yaml']) {
    it(`grants no certificate access with ${file}`, async function () {
      const objects = await renderChart({ valuesFiles: [file] });
      expect(objectsOfKind(objects, 'Role')).to.deep.equal([]);
      expect(objectsOfKind(objects, 'RoleBinding')).to.deep.equal([]);
      const rules = clusterRole(objects, '-webhook');
      expect(
        rulesFor(rules, 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations'),
      ).to.deep.equal([]);
    });
  }

  for (const file of ciValuesFiles()) {
    it(`grants no wildcards with ${file}`, async function () {
      const objects = await renderChart({ valuesFiles: [file] });
      const roles = [
        ...objectsOfKind<V1ClusterRole>(objects, 'ClusterRole'),
        ...objectsOfKind<V1Role>(objects, 'Role'),
      ];
      for (const rule of roles.flatMap((role) => role.rules ?? [])) {
        expect(rule.verbs).not.to.include('*');
        expect(rule.resources).not.to.include('*');
        expect(rule.apiGroups).not.to.include('*');
      }
      const clusterRules = objectsOfKind<V1ClusterRole>(objects, 'ClusterRole').flatMap(
        (role) => role.rules ?? [],
      );
      expect(rulesFor(clusterRules, '', 'secrets')).to.deep.equal([]);
    });
  }
});
