//! The shipped recipes validate, and their hashes are stable across formatting.

use cellops_process::Recipe;
use cellops_process::shipped::{SHIPPED_RECIPES, shipped_recipes};

#[test]
fn every_shipped_recipe_validates() {
    for (file, text) in SHIPPED_RECIPES {
        if let Err(errors) = Recipe::parse(file, text) {
            panic!("{errors}");
        }
    }
    let recipes = shipped_recipes().unwrap();
    let mut products: Vec<&str> = recipes.iter().map(Recipe::product).collect();
    products.sort_unstable();
    products.dedup();
    assert_eq!(products.len(), recipes.len(), "one recipe per product");
}

#[test]
fn shipped_files_match_the_recipes_folder() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../recipes");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut shipped: Vec<String> = SHIPPED_RECIPES.iter().map(|(f, _)| f.to_string()).collect();
    shipped.sort();
    assert_eq!(on_disk, shipped);
}

#[test]
fn every_shipped_second_person_check_names_the_fill_it_verifies() {
    use cellops_process::recipe::model::{SignatureMeaning, StepKind};
    for recipe in shipped_recipes().unwrap() {
        let verifications: Vec<(&str, &str)> = recipe
            .phases()
            .iter()
            .flat_map(|p| &p.steps)
            .filter_map(|s| match &s.kind {
                StepKind::Operator(o) => o.verifies.as_deref().map(|v| {
                    assert_eq!(o.esignature, Some(SignatureMeaning::Verified), "{}", s.id);
                    (s.id.as_str(), v)
                }),
                _ => None,
            })
            .collect();
        let expected = match recipe.product() {
            "allo-car-t-lot" => vec![("verify-dose-labels", "fill-doses")],
            _ => vec![("verify-labels", "formulate-fill")],
        };
        assert_eq!(verifications, expected, "{}", recipe.product());
    }
}
