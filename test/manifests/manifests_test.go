// Package manifests_test renders Skein's install, config/default, the way
// `kubectl apply -k config/default` does, and checks that it hangs together:
// every object is valid for its kind, every reference between objects
// resolves, the operator gets the permissions it needs, and the mesh-wide
// ConfigMap shows every setting at the default the operator would use anyway.
package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// configDir is the repository's config/ directory, seen from this package.
const configDir = "../../config"

// install is config/default, rendered once.
var install = sync.OnceValues(func() ([]runtime.Object, error) { return render("default") })

// render renders config/<dir> the way `kubectl apply -k` does and decodes
// every object strictly into its Go type, so that a misspelt field fails as
// the API server's strict field validation would. cert-manager's kinds stay
// unstructured: the module does not depend on cert-manager.
func render(dir string) ([]runtime.Object, error) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).
		Run(filesys.MakeFsOnDisk(), filepath.Join(configDir, dir))
	if err != nil {
		return nil, fmt.Errorf("render config/%s: %w", dir, err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs []runtime.Object
	for _, r := range resources.Resources() {
		if strings.HasPrefix(r.GetApiVersion(), certManagerGroup+"/") {
			m, err := r.Map()
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
			}
			objs = append(objs, &unstructured.Unstructured{Object: m})
			continue
		}
		data, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		obj, _, err := decoder.Decode(data, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", r.GetKind(), r.GetName(), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// rendered returns the objects of the install, of type T.
func rendered[T runtime.Object](t *testing.T) []T {
	t.Helper()
	return ofType[T](t, install)
}

// ofType returns the objects of type T that objs renders, failing t when
// rendering failed.
func ofType[T runtime.Object](t *testing.T, objs func() ([]runtime.Object, error)) []T {
	t.Helper()
	all, err := objs()
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, o := range all {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// operator returns the one Deployment of the install, skein-operator.
func operator(t *testing.T) *appsv1.Deployment {
	t.Helper()
	deployments := rendered[*appsv1.Deployment](t)
	if len(deployments) != 1 || deployments[0].Name != "skein-operator" {
		t.Fatalf("want one Deployment, skein-operator; got %d: %v", len(deployments), names(deployments))
	}
	if len(deployments[0].Spec.Template.Spec.Containers) == 0 {
		t.Fatalf("Deployment %s has no containers", deployments[0].Name)
	}
	return deployments[0]
}

func TestInstallHasACRDForEveryKind(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := meshv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gv := meshv1alpha1.GroupVersion
	// The scheme also holds metav1's option types under gv; keep the API's own kinds.
	apiPackage := reflect.TypeFor[meshv1alpha1.MeshService]().PkgPath()
	kinds := 0
	for kind, typ := range scheme.KnownTypes(gv) {
		if typ.PkgPath() != apiPackage || strings.HasSuffix(kind, "List") {
			continue
		}
		kinds++
		found := false
		for _, crd := range rendered[*apiextensionsv1.CustomResourceDefinition](t) {
			if crd.Spec.Group == gv.Group && crd.Spec.Names.Kind == kind &&
				slices.ContainsFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool {
					return v.Name == gv.Version && v.Served
				}) {
				found = true
			}
		}
		if !found {
			t.Errorf("no CRD serving %s %s", gv, kind)
		}
	}
	if kinds == 0 {
		t.Fatalf("no kinds registered in %s", apiPackage)
	}
}

func TestMeshConfigMapShowsEverySettingAtItsDefault(t *testing.T) {
	deploy := operator(t)
	// The operator reads the ConfigMap from $POD_NAMESPACE, its own namespace.
	if !slices.ContainsFunc(deploy.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
	}) {
		t.Errorf("Deployment %s: want env POD_NAMESPACE from metadata.namespace", deploy.Name)
	}
	var cm *corev1.ConfigMap
	for _, c := range rendered[*corev1.ConfigMap](t) {
		if c.Namespace == deploy.Namespace && c.Name == meshconfig.ConfigMapName {
			cm = c
		}
	}
	if cm == nil {
		t.Fatalf("no ConfigMap %s/%s, where the operator looks for its settings", deploy.Namespace, meshconfig.ConfigMapName)
	}
	// Each field of Settings is one key; the ConfigMap should show them all.
	if want := reflect.TypeFor[meshconfig.Settings]().NumField(); len(cm.Data) != want {
		t.Errorf("ConfigMap %s has %d keys, want one per setting, %d", cm.Name, len(cm.Data), want)
	}
	for key, value := range cm.Data {
		got, err := meshconfig.Parse(map[string]string{key: value})
		if err != nil {
			t.Errorf("ConfigMap %s: %v", cm.Name, err)
			continue
		}
		if got != meshconfig.Defaults() {
			t.Errorf("ConfigMap %s: %s: %q is not the default\n got: %+v\nwant: %+v", cm.Name, key, value, got, meshconfig.Defaults())
		}
	}
}

func TestOperatorServiceAccountExists(t *testing.T) {
	deploy := operator(t)
	sa := deploy.Spec.Template.Spec.ServiceAccountName
	if sa == "" || !slices.ContainsFunc(rendered[*corev1.ServiceAccount](t), func(s *corev1.ServiceAccount) bool {
		return s.Namespace == deploy.Namespace && s.Name == sa
	}) {
		t.Errorf("Deployment %s runs as ServiceAccount %q, which is not in the install", deploy.Name, sa)
	}
}

func TestMetricsServiceSelectsTheOperator(t *testing.T) {
	deploy := operator(t)
	for _, svc := range rendered[*corev1.Service](t) {
		if svc.Name != "skein-operator-metrics-service" {
			continue
		}
		for k, v := range svc.Spec.Selector {
			if deploy.Spec.Template.Labels[k] != v {
				t.Errorf("Service %s selects %s=%s; the operator's pods are labelled %v", svc.Name, k, v, deploy.Spec.Template.Labels)
			}
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.IntValue() != 8443 {
			t.Errorf("Service %s: want one port targeting 8443, got %+v", svc.Name, svc.Spec.Ports)
		}
		return
	}
	t.Error("no Service skein-operator-metrics-service")
}

func TestBindingsPointAtObjectsInTheInstall(t *testing.T) {
	roles := map[string]bool{}
	for _, r := range rendered[*rbacv1.Role](t) {
		roles["Role "+r.Namespace+"/"+r.Name] = true
	}
	for _, r := range rendered[*rbacv1.ClusterRole](t) {
		roles["ClusterRole "+r.Name] = true
	}
	serviceAccounts := map[string]bool{}
	for _, sa := range rendered[*corev1.ServiceAccount](t) {
		serviceAccounts[sa.Namespace+"/"+sa.Name] = true
	}
	check := func(binding string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespace string) {
		role := "ClusterRole " + ref.Name
		if ref.Kind == "Role" {
			role = "Role " + namespace + "/" + ref.Name
		}
		if !roles[role] {
			t.Errorf("%s binds %s, which is not in the install", binding, role)
		}
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && !serviceAccounts[s.Namespace+"/"+s.Name] {
				t.Errorf("%s binds ServiceAccount %s/%s, which is not in the install", binding, s.Namespace, s.Name)
			}
		}
	}
	for _, b := range rendered[*rbacv1.RoleBinding](t) {
		check("RoleBinding "+b.Namespace+"/"+b.Name, b.RoleRef, b.Subjects, b.Namespace)
	}
	for _, b := range rendered[*rbacv1.ClusterRoleBinding](t) {
		if b.RoleRef.Kind != "ClusterRole" {
			t.Errorf("ClusterRoleBinding %s refers to a %s; it can only refer to a ClusterRole", b.Name, b.RoleRef.Kind)
		}
		check("ClusterRoleBinding "+b.Name, b.RoleRef, b.Subjects, "")
	}
}

func TestOperatorHasThePermissionsItNeeds(t *testing.T) {
	deploy := operator(t)
	generated := generatedRoleName(t)
	clusterWide, inNamespace := rulesOf(t, deploy.Namespace, deploy.Spec.Template.Spec.ServiceAccountName)
	if !slices.ContainsFunc(rendered[*rbacv1.ClusterRoleBinding](t), func(b *rbacv1.ClusterRoleBinding) bool {
		return b.RoleRef.Name == generated && bindsServiceAccount(b.Subjects, deploy.Namespace, deploy.Spec.Template.Spec.ServiceAccountName)
	}) {
		t.Errorf("the ClusterRole generated from the +kubebuilder:rbac markers, %s, is not bound to the operator", generated)
	}
	for _, need := range []struct {
		why                   string // what the operator needs it for
		group, resource, verb string // the request it must be allowed to make
		namespaced            bool   // needed in its own namespace only, not cluster-wide
	}{
		{"leader election", "coordination.k8s.io", "leases", "create", true},
		{"leader election", "coordination.k8s.io", "leases", "update", true},
		{"leader election events", "", "events", "create", true},
		{"secure metrics", "authentication.k8s.io", "tokenreviews", "create", false},
		{"secure metrics", "authorization.k8s.io", "subjectaccessreviews", "create", false},
		{"reading its ConfigMap", "", "configmaps", "watch", true},
	} {
		rules := clusterWide
		if need.namespaced {
			rules = inNamespace
		}
		if !allows(rules, need.group, need.resource, need.verb) {
			t.Errorf("operator cannot %s %s in API group %q, needed for %s", need.verb, need.resource, need.group, need.why)
		}
	}
}

func TestUsersWhoMayEditOrViewANamespaceMayEditOrViewItsMeshResources(t *testing.T) {
	for _, crd := range rendered[*apiextensionsv1.CustomResourceDefinition](t) {
		group, plural := crd.Spec.Group, crd.Spec.Names.Plural
		for _, want := range []struct{ aggregateTo, verb string }{
			{"edit", "create"}, {"edit", "delete"}, {"admin", "update"}, {"view", "list"}, {"view", "watch"},
		} {
			label := "rbac.authorization.k8s.io/aggregate-to-" + want.aggregateTo
			if !slices.ContainsFunc(rendered[*rbacv1.ClusterRole](t), func(r *rbacv1.ClusterRole) bool {
				return r.Labels[label] == "true" && allows(r.Rules, group, plural, want.verb)
			}) {
				t.Errorf("no ClusterRole labelled %s grants %s on %s.%s", label, want.verb, plural, group)
			}
		}
	}
}

func TestNamespacedObjectsHaveTheirNamespace(t *testing.T) {
	namespaces := map[string]bool{}
	for _, ns := range rendered[*corev1.Namespace](t) {
		namespaces[ns.Name] = true
	}
	objs, err := install()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		m, ok := o.(metav1.Object)
		if !ok {
			t.Fatalf("%T has no object metadata", o)
		}
		if ns := m.GetNamespace(); ns != "" && !namespaces[ns] {
			t.Errorf("%T %s is in namespace %s, which is not in the install", o, m.GetName(), ns)
		}
	}
}

// generatedRoleName is the name of the ClusterRole in config/rbac/role.yaml,
// which `make manifests` generates.
func generatedRoleName(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(configDir, "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil || role.Name == "" {
		t.Fatalf("config/rbac/role.yaml: want one named ClusterRole, got %q (%v)", role.Name, err)
	}
	return role.Name
}

// rulesOf returns the rules granted to ServiceAccount namespace/name
// cluster-wide, and those in force in its own namespace (which include the
// cluster-wide ones).
func rulesOf(t *testing.T, namespace, name string) (clusterWide, inNamespace []rbacv1.PolicyRule) {
	t.Helper()
	rulesByRole := map[string][]rbacv1.PolicyRule{}
	for _, r := range rendered[*rbacv1.ClusterRole](t) {
		rulesByRole["ClusterRole/"+r.Name] = r.Rules
	}
	for _, r := range rendered[*rbacv1.Role](t) {
		rulesByRole["Role/"+r.Namespace+"/"+r.Name] = r.Rules
	}
	for _, b := range rendered[*rbacv1.ClusterRoleBinding](t) {
		if bindsServiceAccount(b.Subjects, namespace, name) {
			clusterWide = append(clusterWide, rulesByRole["ClusterRole/"+b.RoleRef.Name]...)
		}
	}
	inNamespace = slices.Clone(clusterWide)
	for _, b := range rendered[*rbacv1.RoleBinding](t) {
		if b.Namespace != namespace || !bindsServiceAccount(b.Subjects, namespace, name) {
			continue
		}
		key := "ClusterRole/" + b.RoleRef.Name
		if b.RoleRef.Kind == "Role" {
			key = "Role/" + b.Namespace + "/" + b.RoleRef.Name
		}
		inNamespace = append(inNamespace, rulesByRole[key]...)
	}
	return clusterWide, inNamespace
}

func bindsServiceAccount(subjects []rbacv1.Subject, namespace, name string) bool {
	return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
		return s.Kind == rbacv1.ServiceAccountKind && s.Namespace == namespace && s.Name == name
	})
}

// allows reports whether rules grant verb on resource in API group.
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	has := func(list []string, s string) bool { return slices.Contains(list, s) || slices.Contains(list, "*") }
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return has(r.APIGroups, group) && has(r.Resources, resource) && has(r.Verbs, verb)
	})
}

func names[T interface{ GetName() string }](objs []T) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return out
}
