//! Extraction: choosing one node per e-class so that the roots are cheapest.
//!
//! A trace computes each value once however many times it is used, so the measure is
//! the *DAG cost*: the sum of the costs of the distinct classes reachable from all roots
//! at once. Two extractors are run and the cheaper choice in DAG cost is kept:
//! egg's tree extractor (best per class in isolation, which counts shared values once per
//! use) and a greedy sharing-aware extractor (each class's cost is the set of classes it
//! needs, so shared values are counted once), after the "faster greedy DAG" extractor of
//! extraction-gym.

use std::collections::{BTreeMap, HashMap, HashSet};

use egg::{CostFunction, Extractor, Id, Language};

use crate::analysis::Graph;
use crate::cost::node_cost;
use crate::lang::Node;

/// One chosen node per class (canonical ids).
pub type Choice = HashMap<Id, Node>;

/// The tree cost for egg's `Extractor`: a node plus its children, saturating.
pub struct TreeCost;

impl CostFunction<Node> for TreeCost {
    type Cost = u64;

    fn cost<C>(&mut self, enode: &Node, mut costs: C) -> u64
    where
        C: FnMut(Id) -> u64,
    {
        enode
            .children()
            .iter()
            .fold(node_cost(enode), |sum, &c| sum.saturating_add(costs(c)))
    }
}

/// egg's tree extractor, as a choice for every class.
pub fn tree_choice(egraph: &Graph) -> Choice {
    let extractor = Extractor::new(egraph, TreeCost);
    egraph
        .classes()
        .map(|class| (class.id, extractor.find_best_node(class.id).clone()))
        .collect()
}

/// How many passes the greedy extractor makes at most. Each pass can only lower a
/// class's cost, so it converges; the bound keeps a pathological graph from running on
/// (a stopped extractor still has a complete choice for every class it reached).
pub const GREEDY_MAX_PASSES: usize = 64;

/// The greedy sharing-aware extractor.
pub fn greedy_dag_choice(egraph: &Graph) -> Choice {
    // Per class: the chosen node, and the classes (with their node costs) it needs.
    let mut best: HashMap<Id, (Node, BTreeMap<Id, u64>, u64)> = HashMap::new();
    for _ in 0..GREEDY_MAX_PASSES {
        let mut changed = false;
        for class in egraph.classes() {
            for node in class.iter() {
                let children: Vec<Id> = node.children().iter().map(|&c| egraph.find(c)).collect();
                if children.iter().any(|c| !best.contains_key(c)) {
                    continue;
                }
                if children
                    .iter()
                    .any(|c| *c == class.id || best[c].1.contains_key(&class.id))
                {
                    continue;
                }
                let mut set: BTreeMap<Id, u64> = BTreeMap::new();
                for c in &children {
                    set.extend(best[c].1.iter().map(|(k, v)| (*k, *v)));
                }
                set.insert(class.id, node_cost(node));
                let total: u64 = set.values().sum();
                let better = match best.get(&class.id) {
                    None => true,
                    Some((_, _, old)) => total < *old,
                };
                if better {
                    best.insert(class.id, (node.clone(), set, total));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    best.into_iter()
        .map(|(id, (node, _, _))| (id, node))
        .collect()
}

/// The DAG cost of `choice` over `roots`: each reachable class counted once. `None` if
/// the choice misses a class or has a cycle.
pub fn dag_cost(egraph: &Graph, choice: &Choice, roots: &[Id]) -> Option<u64> {
    let mut done: HashSet<Id> = HashSet::new();
    let mut on_path: HashSet<Id> = HashSet::new();
    fn visit(
        egraph: &Graph,
        choice: &Choice,
        id: Id,
        done: &mut HashSet<Id>,
        on_path: &mut HashSet<Id>,
        total: &mut u64,
    ) -> Option<()> {
        let id = egraph.find(id);
        if done.contains(&id) {
            return Some(());
        }
        if !on_path.insert(id) {
            return None;
        }
        let node = choice.get(&id)?;
        for &c in node.children() {
            visit(egraph, choice, c, done, on_path, total)?;
        }
        on_path.remove(&id);
        done.insert(id);
        *total += node_cost(node);
        Some(())
    }
    let mut total = 0;
    for &r in roots {
        visit(egraph, choice, r, &mut done, &mut on_path, &mut total)?;
    }
    Some(total)
}

/// The better of the tree and greedy choices in DAG cost over `roots`.
pub fn extract(egraph: &Graph, roots: &[Id]) -> (Choice, u64) {
    let tree = tree_choice(egraph);
    let tree_cost = dag_cost(egraph, &tree, roots).expect("the tree extractor's choice is acyclic");
    let greedy = greedy_dag_choice(egraph);
    match dag_cost(egraph, &greedy, roots) {
        Some(cost) if cost < tree_cost => (greedy, cost),
        _ => (tree, tree_cost),
    }
}
